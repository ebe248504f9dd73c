"""Exact normalized text for each normalization class."""

from __future__ import annotations

import pytest

from voxserve.frontend.zh.normalize import normalize

CASES = {
    "integer": ("我有1234567元", "我有一百二十三万四千五百六十七元"),
    "integer_zeros": ("共10050人", "共一万零五十人"),
    "thousands_separator": ("收入1,234,567元", "收入一百二十三万四千五百六十七元"),
    "decimal": ("圆周率约为3.14", "圆周率约为三点一四"),
    "percentage": ("增长了50%", "增长了百分之五十"),
    "percentage_decimal": ("下降3.5%", "下降百分之三点五"),
    "percentage_range": ("占10%-20%", "占百分之十到百分之二十"),
    "fraction": ("有3/4的人", "有四分之三的人"),
    "negative": ("温度是-5度", "温度是负五度"),
    "negative_percent": ("下降-2%", "下降负百分之二"),
    "ordinal": ("排名第1", "排名第一"),
    "ordinal_english": ("他是1st", "他是第一"),
    "date_chinese": ("2024年3月5日", "二零二四年三月五日"),
    "date_dash": ("2024-03-05出发", "二零二四年三月五日出发"),
    "date_slash": ("2024/3/5", "二零二四年三月五日"),
    "year": ("我们在1998年认识", "我们在一九九八年认识"),
    "year_range": ("2020-2024年", "二零二零到二零二四年"),
    "time": ("现在是14:30", "现在是十四点三十分"),
    "time_seconds": ("8:05:09出发", "八点零五分零九秒出发"),
    "time_full_hour": ("8:00开会", "八点开会"),
    "ratio": ("比分3:2", "比分三比二"),
    "mobile": ("电话13812345678", "电话幺三八 幺二三四 五六七八"),
    "landline": ("拨打010-12345678", "拨打零幺零 幺二三四五六七八"),
    "hotline": ("热线400-820-8820", "热线四零零 八二零 八八二零"),
    "short_number_in_context": ("请拨打110", "请拨打幺幺零"),
    "money_yuan_symbol": ("¥12.5", "十二点五元"),
    "money_dollar": ("$3", "三美元"),
    "money_magnitude": ("花了$5M", "花了五百万美元"),
    "money_yuan": ("100元", "一百元"),
    "money_big": ("3.5亿美元", "三点五亿美元"),
    "money_code": ("100 USD", "一百美元"),
    "unit_km": ("跑了5km", "跑了五公里"),
    "unit_kg": ("重5kg", "重五千克"),
    "unit_celsius": ("25℃", "二十五摄氏度"),
    "unit_square_metre": ("面积100m²", "面积一百平方米"),
    "unit_gb": ("10GB内存", "十GB内存"),
    "unit_speed": ("时速120km/h", "时速一百二十公里每小时"),
    "range_hyphen": ("3-5个", "三到五个"),
    "range_tilde": ("3~5个", "三到五个"),
    "range_units": ("3-5km", "三到五公里"),
    "arithmetic": ("1+1=2", "一加一等于二"),
    "minus": ("5-3=2", "五减三等于二"),
    "times_divide": ("3×4和8÷2", "三乘四和八除以二"),
    "symbols": ("A&B，#1，C++", "A和B，井号一，C加加"),
    "at": ("a@b.com", "a艾特b点com"),
    "letters_digits": ("MP3和H264", "MP三和H二六四"),
    "model_number": ("GPT-4很强", "GPT四很强"),
    "fullwidth": ("ＡＢＣ１２３，你好！", "ABC一二三，你好！"),
    "ascii_punctuation": ('Hello, world! 他说:"好"', "Hello，world！他说：“好”"),
    "corner_quotes": ("「你好」他说", "“你好”他说"),
    "ellipsis": ("你好...", "你好…"),
    "greek": ("α粒子", "阿尔法粒子"),
    "accents": ("café", "cafe"),
    "whitespace": ("  你好   世界  ", "你好 世界"),
    "tilde_words": ("周一~周五", "周一到周五"),
    "per": ("10元/斤", "十元每斤"),
}


@pytest.mark.parametrize(("raw", "expected"), list(CASES.values()), ids=list(CASES))
def test_normalization(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), list(CASES.values()), ids=list(CASES))
def test_idempotent(raw, expected):
    assert normalize(expected) == expected


def test_emoji_and_control_characters_are_dropped():
    assert normalize("你好😀世界") == "你好世界"
    assert normalize("a\x00b\u200bc\x7f") == "abc"
    assert normalize("😀★©™") == ""


def test_newlines_are_kept_and_collapsed():
    assert normalize("第一行\r\n\r\n  第二行") == "第一行\n第二行"


def test_plain_text_is_returned_unchanged():
    text = "今天天气很好，我们一起去公园散步吧。"
    assert normalize(text) is text


def test_digits_of_other_scripts_do_not_crash():
    assert normalize("价格٣٤元，३个，12个") == "价格元，个，十二个"
