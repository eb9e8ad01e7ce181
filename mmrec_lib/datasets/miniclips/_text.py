"""MiniClips text generator: bilingual titles, descriptions and tags of a clip, with realistic noise."""

from __future__ import annotations

import numpy as np

from mmrec_lib.datasets.miniclips._constants import CATEGORY_NAMES

__all__ = ["_make_text"]

# Text vocabularies. English nouns come with synonyms; Chinese phrases are written as a native
# uploader would title a clip, not as glosses of the English.
_EN_NOUNS = {
    "music": ["guitar cover", "piano solo", "acoustic session", "new song", "live performance",
              "violin piece", "beat making", "melody", "singing cover", "drum solo"],
    "sports": ["basketball highlights", "football skills", "workout", "training session",
               "match recap", "best goals", "gym routine", "tennis rally", "running vlog",
               "skateboard tricks"],
    "cooking": ["easy recipe", "homemade dumplings", "pasta dinner", "breakfast ideas",
                "street food", "baking bread", "braised pork", "knife skills", "meal prep",
                "noodle soup"],
    "gaming": ["gameplay", "speedrun", "boss fight", "game walkthrough", "esports highlights",
               "ranked match", "new level", "let's play", "pro gamer moves", "retro game"],
    "pets": ["my cat", "puppy", "kitten", "dog bath time", "cute hamster", "my corgi",
             "parrot talking", "cat nap", "doggo", "rescue kitten"],
    "travel": ["road trip", "beach sunset", "city walk", "travel vlog", "mountain hike",
               "old town", "train journey", "island trip", "backpacking", "hotel tour"],
    "news": ["breaking news", "weather report", "tech news", "market update", "daily briefing",
             "press conference", "headlines", "election update", "science news", "news recap"],
    "comedy": ["prank", "funny moments", "stand-up bit", "sketch", "bloopers", "comedy skit",
               "fails compilation", "parody", "jokes", "try not to laugh"],
    "dance": ["dance challenge", "choreography", "hip hop dance", "ballet practice",
              "street dance", "dance cover", "tutorial dance", "jazz dance", "freestyle dance",
              "square dance"],
    "nature": ["forest birdsong", "waterfall", "night sky timelapse", "rain sounds",
               "wildlife documentary", "ocean waves", "flowers blooming", "snowy mountains",
               "river stream", "autumn leaves"],
}
_ZH_PHRASES = {
    "music": ["吉他弹唱", "钢琴独奏", "翻唱经典老歌", "原创音乐分享", "现场演唱会",
              "小提琴演奏", "深夜听歌", "一首好听的歌"],
    "sports": ["篮球比赛精彩瞬间", "足球技巧教学", "健身房训练日常", "跑步打卡",
               "羽毛球对决", "滑板技巧", "进球集锦", "每天练腹肌"],
    "cooking": ["家常菜做法", "红烧肉教程", "十分钟快手早餐", "在家包饺子", "煎牛排",
                "自制面包", "番茄炒蛋", "街头小吃"],
    "gaming": ["王者荣耀五杀", "游戏实况", "通关攻略", "电竞比赛集锦", "新手教程",
               "排位赛上分", "怀旧游戏", "打败最终大魔王"],
    "pets": ["我家猫咪", "小狗洗澡", "猫咪睡觉", "柯基犬的日常", "仓鼠吃东西", "会说话的鹦鹉",
             "领养小奶猫", "狗狗拆家"],
    "travel": ["云南旅行", "海边看日落", "自驾游记录", "古镇漫步", "旅行日记", "爬山看日出",
               "坐火车去西藏", "海岛度假"],
    "news": ["今日新闻速报", "天气预报", "科技新闻", "财经快讯", "新闻发布会", "每日要闻",
             "国际新闻", "新闻回顾"],
    "comedy": ["搞笑段子", "爆笑瞬间", "整蛊朋友", "沙雕日常", "相声小品", "脱口秀片段",
               "翻车现场", "忍住别笑挑战"],
    "dance": ["街舞教学", "广场舞", "爵士舞翻跳", "舞蹈挑战", "芭蕾练习", "跳舞打卡",
              "宅舞翻跳", "即兴舞蹈"],
    "nature": ["森林里的鸟叫", "瀑布风景", "星空延时摄影", "下雨的声音", "野生动物纪录片",
               "海浪的声音", "花开的瞬间", "秋天的落叶"],
}
_EN_TAGS = {
    "music": ["music", "song", "cover", "guitar", "piano", "musician"],
    "sports": ["sports", "fitness", "basketball", "football", "workout", "athlete"],
    "cooking": ["cooking", "food", "recipe", "foodie", "kitchen", "yummy"],
    "gaming": ["gaming", "games", "gamer", "esports", "videogames", "twitch"],
    "pets": ["pets", "cat", "dog", "cute", "animals", "petlover"],
    "travel": ["travel", "wanderlust", "trip", "explore", "vacation", "vlog"],
    "news": ["news", "breaking", "update", "world", "today", "report"],
    "comedy": ["comedy", "funny", "lol", "humor", "prank", "memes"],
    "dance": ["dance", "dancer", "choreo", "dancechallenge", "hiphop", "moves"],
    "nature": ["nature", "relax", "landscape", "wildlife", "outdoors", "asmr"],
}
_GENERIC_EN = ["You won't believe this", "Wait for it...", "My day today", "Part 2",
               "Must watch!!", "Just vibing", "ok this is crazy", "Watch till the end",
               "POV", "New video", "Guess what happened", "Daily vlog #12"]
_GENERIC_ZH = ["今天的日常", "一定要看到最后", "你绝对想不到", "第二集", "分享一下",
               "记录生活", "太真实了", "这是什么操作"]
_GENERIC_TAGS = ["fyp", "viral", "trending", "daily", "foryou", "new"]
_EN_HIGH = ["EPIC", "insane", "intense", "crazy fast", "high energy", "hype"]
_EN_LOW = ["chill", "relaxing", "calm", "slow", "peaceful", "cozy"]
_ZH_HIGH = ["超燃！", "太炸了！", "嗨翻全场"]
_ZH_LOW = ["治愈系", "安静地", "放松一下："]
_EN_SUFFIX = ["", "", "", " (full version)", " | part 1", "!!", " #shorts", " - day 3"]
_ZH_SUFFIX = ["", "", "，太好看了", "（完整版）", "，一定要看到最后", "，第一次尝试"]
_DESC_OPENERS = ["Today I share a", "Here is a short clip of a", "Quick look at a",
                 "Another", "A little", "Check out this"]
_GENERIC_DESC = ["Had fun filming this one.", "Link in bio.", "What do you think?",
                 "Sorry for the bad audio.", "Follow for part 2!", "Just a normal day."]
_DESC_FILLERS = ["Like and follow for more.", "Thanks for watching!",
                 "Comment what you want to see next.", "Filmed on my phone.", "", ""]


def _make_text(rng: np.random.Generator, category: int, arousal: float) -> tuple:
    """English title, Chinese title, description and tags of one clip."""
    name = CATEGORY_NAMES[category]
    others = [c for c in CATEGORY_NAMES if c != name]

    def energy_word(high: list[str], low: list[str]) -> str:
        # Text says a little about energy: sometimes, and not always rightly.
        if rng.uniform() > 0.3:
            return ""
        correct = rng.uniform() < 0.75
        use_high = (arousal > 0) == correct
        return str(rng.choice(high if use_high else low))

    # English title: 70% on-topic, 18% generic, 12% misleading (another category's words).
    roll = rng.uniform()
    if roll < 0.18:
        title_en = str(rng.choice(_GENERIC_EN))
    else:
        topic = name if roll >= 0.30 else str(rng.choice(others))
        noun = str(rng.choice(_EN_NOUNS[topic]))
        word = energy_word(_EN_HIGH, _EN_LOW)
        title_en = (f"{word} {noun}" if word else noun)
        title_en = title_en[0].upper() + title_en[1:] + str(rng.choice(_EN_SUFFIX))

    # Chinese title: drawn independently (not a translation), same kinds of noise.
    roll = rng.uniform()
    if roll < 0.15:
        title_zh = str(rng.choice(_GENERIC_ZH))
    else:
        topic = name if roll >= 0.25 else str(rng.choice(others))
        phrase = str(rng.choice(_ZH_PHRASES[topic]))
        word = energy_word(_ZH_HIGH, _ZH_LOW)
        title_zh = word + phrase + str(rng.choice(_ZH_SUFFIX))

    # Description: on topic (with synonyms) about two times in three; otherwise empty,
    # generic, or about something else.
    roll = rng.uniform()
    if roll < 0.15:
        description = ""
    elif roll < 0.27:
        description = str(rng.choice(_GENERIC_DESC))
    else:
        topic = name if roll >= 0.37 else str(rng.choice(others))
        nouns = rng.choice(_EN_NOUNS[topic], size=2, replace=False)
        word = energy_word(_EN_HIGH, _EN_LOW)
        description = (f"{rng.choice(_DESC_OPENERS)} {word + ' ' if word else ''}{nouns[0]}, "
                       f"with some {nouns[1]}. {rng.choice(_DESC_FILLERS)}").strip()

    # Tags: a few honest ones, some generic, now and then a wrong one.
    tags = list(rng.choice(_EN_TAGS[name], size=int(rng.integers(0, 3)), replace=False))
    tags += list(rng.choice(_GENERIC_TAGS, size=int(rng.integers(0, 3)), replace=False))
    if rng.uniform() < 0.15:
        tags.append(str(rng.choice(_EN_TAGS[str(rng.choice(others))])))
    return title_en, title_zh, description, "|".join(str(t) for t in tags)

