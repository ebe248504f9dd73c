"""Text frontend speed: split + phonemize per sentence, cold and warm.

``bench_frontend`` times the Mandarin frontend (normalization included) on a
built-in list of varied ~50-character sentences or on given ones. The first
call in a fresh process pays jieba's and pypinyin's loading; it is reported
separately as ``cold_ms``. Warm numbers are per sentence over ``repeat`` passes.
Nothing is printed; the caller formats the dict.
"""

from __future__ import annotations

import statistics
import time

SENTENCES: tuple[str, ...] = (
    "今天天气很好，我们一起去公园散步吧，顺便看看湖边新开的那家咖啡店到底怎么样，好不好喝。",
    "据新华社报道，2024年3月5日上午9:30，第十四届全国人民代表大会第二次会议在北京人民大会堂开幕。",
    "这款手机售价¥3999，配备6.7英寸屏幕和5000mAh电池，重量比上一代轻了12%左右，下个月正式发售。",
    "如果明天不下雨的话，我打算早上七点出发，开车去郊外的山上看日出，然后回来跟家里人一起吃午饭。",
    "他说这个问题需要进一步研究，但是大家都同意先把方案交给领导审批，再决定下一步应该怎么做比较好。",
    "请拨打客服热线400-820-8820或者发邮件联系我们，我们的工作人员会在24小时内给您一个满意的答复。",
    "银行的工作人员告诉我，重新办理这张卡需要带上身份证和户口本，还要填写一张长长的表格才能办好。",
    "小明从小就喜欢音乐，长大以后成了一名钢琴老师，每天下午都在家里教孩子们弹琴，过得非常快乐。",
    "会议室里已经坐满了人，老李买好酒以后才姗姗来迟，大家看到他满头大汗的样子都忍不住笑了起来。",
    "本次期末考试的及格线是60分，全班共有45名同学参加，其中3/4的同学顺利通过了考试，成绩还不错。",
    "GDP增长率达到了5.2%，CPI同比上涨0.3%，专家认为整体经济运行仍然保持在合理区间之内，前景向好。",
    "这部电影讲述了一个普通人在困境中坚持梦想的故事，上映第一周票房就突破了十亿元，口碑也非常好。",
    "外面的温度已经降到了-5℃，记得多穿一点衣服，出门的时候千万别忘了戴上帽子和手套，小心着凉。",
    "我们用iPhone拍了很多照片，然后全部上传到云盘里，一共占用了大约20GB的存储空间，还剩下不少。",
    "老师让同学们把课本翻到第36页，先认真读一遍课文，再回答后面的五个思考题，有不会的地方可以问我。",
    "周末的时候，爸爸妈妈带着弟弟妹妹去动物园看了大熊猫、长颈鹿和一群可爱的小猴子，玩得特别开心。",
    "这条高速公路全长128.5公里，设计时速120km/h，总投资约3.5亿元，预计将于明年年底正式建成通车。",
    "你好，欢迎致电我们公司，普通话服务请按一，英语服务请按二，查询订单请按三，人工服务请按零，谢谢。",
    "虽然这次比赛我们输了，但是每个人都已经尽了最大的努力，只要继续坚持训练，下次一定能取得更好的成绩。",
    "春天来了，河边的柳树发出了嫩绿的新芽，燕子从遥远的南方飞回来，在老房子的屋檐下忙着衔泥筑巢。",
)
"""Built-in benchmark sentences: about 50 characters each, mixing plain prose, numbers,
dates, money, units, phone numbers, Latin letters and polyphones."""


def _percentile(sorted_values: list[float], fraction: float) -> float:
    k = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[k]


def bench_frontend(sentences: list[str] | None = None, repeat: int = 200) -> dict[str, float | int]:
    """Time split + phonemize per input sentence; milliseconds, plus sizes.

    Returns ``cold_ms`` (constructing the frontend and handling the first sentence,
    including jieba/pypinyin loading when this process has not loaded them yet),
    ``mean_ms``/``p50_ms``/``p95_ms`` (warm, per input sentence), ``sentences``,
    ``repeat``, ``mean_chars`` (input characters per sentence) and ``symbols_per_sentence``.
    """
    from voxserve.frontend.mandarin import MandarinFrontend

    texts = list(sentences) if sentences is not None else list(SENTENCES)
    if not texts:
        raise ValueError("bench_frontend needs at least one sentence")
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")

    start = time.perf_counter()
    frontend = MandarinFrontend("baker")
    for piece in frontend.split(texts[0]):
        frontend.phonemize(piece)
    cold_ms = (time.perf_counter() - start) * 1000.0

    symbols = 0
    for text in texts:  # one untimed pass so per-word caches hold every word
        for piece in frontend.split(text):
            symbols += len(frontend.phonemize(piece).symbols)

    times: list[float] = []
    clock = time.perf_counter
    for _ in range(repeat):
        for text in texts:
            t0 = clock()
            for piece in frontend.split(text):
                frontend.phonemize(piece)
            times.append((clock() - t0) * 1000.0)
    times.sort()
    return {
        "cold_ms": cold_ms,
        "mean_ms": statistics.fmean(times),
        "p50_ms": _percentile(times, 0.50),
        "p95_ms": _percentile(times, 0.95),
        "sentences": len(texts),
        "repeat": repeat,
        "mean_chars": statistics.fmean(len(t) for t in texts),
        "symbols_per_sentence": symbols / len(texts),
    }
