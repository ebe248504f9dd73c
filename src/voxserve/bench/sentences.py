"""Fixed Mandarin texts for quality tests and latency benchmarks.

The texts are fixed so that scores and timings stay comparable between runs and
commits; change them only together with the numbers recorded against them. Each
quality sentence exercises something a Mandarin frontend can get wrong (numbers read
out, polyphones, punctuation and sentence splitting); none is in the Baker corpus.
"""

from __future__ import annotations

QUALITY_SENTENCES: tuple[str, ...] = (
    # Numbers: dates, times, money, decimals, percentages, phone numbers, big numbers.
    "今天是2024年3月15日，星期五。",
    "会议定在下午3:30开始，请大家准时参加。",
    "火车将于早上8点45分从北京南站出发。",
    "这件衣服打折以后只要199.5元。",
    "今年公司的利润增长了23.5%，比去年好得多。",
    "如有疑问，请拨打客服电话13812345678。",
    "圆周率约等于3.14159。",
    "我们班一共有45名同学，其中女生21人。",
    "这台电脑的价格是6800元，比去年便宜了12%。",
    "2008年北京举办了第29届夏季奥运会。",
    "地球到月球的平均距离大约是38万公里。",
    "这次考试他得了98分，排名全班第一。",
    # Polyphones: 行 hang2/xing2, 长 zhang3/chang2, 重 chong2/zhong4, 乐 yue4/le4,
    # 还 hai2/huan2, 觉 jue2/jiao4, plus 一/不 tone sandhi.
    "他去银行取钱，然后沿着河边行走。",
    "孩子们一天天长大了，头发也长长了。",
    "这个箱子太重了，我们重新打包吧。",
    "听音乐让我感到非常快乐。",
    "你想喝茶还是咖啡？我还是喝茶吧。",
    "我觉得有点累，想早点睡觉。",
    "银行的工作人员告诉我，重新办理这张卡需要三个工作日。",
    "长江是中国最长的河流，全长约6300公里。",
    "借的书要按时还，这一点他一直不太在意。",
    # Punctuation, a question, an exclamation.
    "你明天下午有空吗？",
    "太好了！我们终于赢得了比赛！",
    "他说：“这本书——我已经读了三遍了。”",
    "春天来了；花开了，草绿了，鸟儿也唱起了歌。",
    "北京、上海、广州和深圳都是中国的大城市。",
    # A long paragraph (about 150 characters, several sentences).
    "清晨的公园里总是很热闹。老人们在树下打太极拳，年轻人沿着湖边慢跑，孩子们在草地上追逐嬉戏。"
    "阳光透过树叶洒下来，空气中弥漫着花草的清香。我常常在这里散步，一边呼吸新鲜空气，"
    "一边思考一天的计划。对我来说，这是一天中最放松、最快乐的时光。不管工作多忙，"
    "我都会抽出半个小时来这里走一走，这已经成了我多年的习惯。",
)
"""Sentences that the ASR judge scores; each covers a known frontend difficulty."""

BENCH_SENTENCES: dict[str, tuple[str, ...]] = {
    "short": (
        "今天的天气真是不错。",
        "请问最近的地铁站在哪？",
        "欢迎大家来到北京。",
    ),
    "medium": (
        "随着人工智能技术的快速发展，语音合成已经被广泛应用于导航、客服、有声读物和智能音箱等许多不同的领域。",
        "上个周末我和几个朋友一起去郊外爬山，山顶的风景非常美丽，我们拍了很多照片，一直玩到傍晚才回家。",
        "这家餐厅的菜味道很好，价格也不算贵，服务员又热情，所以每到中午和晚上，门口总是排着长长的队伍。",
    ),
    "long": (
        "语音合成是一种把文字转换成语音的技术。早期的系统依靠拼接预先录制的声音片段，听起来往往生硬而不自然。"
        "后来，统计参数方法让声音变得更加平滑，但音质仍然有限。近年来，基于深度神经网络的模型大大提高了合成语音的"
        "自然度和表现力，有些系统甚至可以模仿不同说话人的音色和情感。如今，这项技术已经走进了我们的日常生活，"
        "帮助视障人士阅读，也让机器能够更加自然、更加亲切地与人交流，未来还会有更多新的应用。",
        "我的家乡是南方的一座小城，城边有一条清澈的小河，河上架着几座古老的石桥。小时候，每到夏天，我和小伙伴们"
        "常常在河边捉鱼、游泳，一玩就是一整天。傍晚的时候，家家户户的屋顶升起袅袅炊烟，母亲站在门口喊我回家吃饭。"
        "后来我到大城市读书、工作，很少有机会回去。可是每当夜深人静的时候，那条小河和那些快乐的日子，总会出现在"
        "我的梦里，让我久久不能忘怀，也让我更加珍惜现在的生活。",
        "健康的生活方式包括均衡的饮食、充足的睡眠和适量的运动。专家建议，成年人每天应该保证七到八个小时的睡眠，"
        "每周进行至少一百五十分钟的中等强度运动，比如快走、游泳或者骑自行车。饮食方面，要多吃蔬菜水果和粗粮，"
        "少吃油炸食品和甜食，同时注意多喝水。此外，保持良好的心态也非常重要，遇到压力的时候，可以通过听音乐、"
        "散步或者和朋友聊天来放松自己，让身体和心情都保持在最好的状态。",
    ),
}
"""Latency benchmark texts by size class: short (~10 characters), medium (~50), long (~200)."""
