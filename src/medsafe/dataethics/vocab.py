"""Word lists the detectors use: place names, surnames, titles and context keywords."""

from __future__ import annotations


def words(text: str) -> tuple[str, ...]:
    """The space-separated words of ``text``."""
    return tuple(text.split())


CN_PROVINCES = words(
    "北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 "
    "江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 "
    "广东 海南 四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门"
)
"""The 34 provincial-level divisions of China (short names)."""

JP_PREFECTURES = words(
    "北海道 青森県 岩手県 宮城県 秋田県 山形県 福島県 茨城県 栃木県 群馬県 埼玉県 千葉県 東京都 "
    "神奈川県 新潟県 富山県 石川県 福井県 山梨県 長野県 岐阜県 静岡県 愛知県 三重県 滋賀県 京都府 "
    "大阪府 兵庫県 奈良県 和歌山県 鳥取県 島根県 岡山県 広島県 山口県 徳島県 香川県 愛媛県 高知県 "
    "福岡県 佐賀県 長崎県 熊本県 大分県 宮崎県 鹿児島県 沖縄県"
)
"""The 47 prefectures of Japan."""

CN_SURNAMES = words(
    "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 "
    "何 高 林 罗 郑 梁 谢 宋 唐 许 韩 冯 邓 曹 彭 曾 "
    "肖 田 董 袁 潘 于 蒋 蔡 余 杜 叶 程 苏 魏 吕 丁 "
    "任 沈 姚 卢 姜 崔 钟 谭 陆 汪 范 金 石 廖 贾 夏 "
    "韦 付 方 白 邹 孟 熊 秦 邱 江 尹 薛 闫 段 雷 侯 "
    "龙 史 陶 黎 贺 顾 毛 郝 龚 邵 万 钱 严 覃 武 戴 "
    "莫 孔 汤 常 温 康 施 文 牛 樊 葛 邢 安 齐 易 "
    "乔 伍 庞 颜 倪 庄 聂 章 鲁 岳 翟 殷 詹 申 欧阳 "
    "司马 上官 诸葛 东方 皇甫 令狐"
)
"""Common Chinese surnames (the name in "王医生" starts with one of these)."""

ZH_TITLES = words(
    "老先生 老太太 医生 大夫 先生 女士 小姐 护士长 护士 "
    "教授 主任 老师 阿姨 师傅 院长 太太 奶奶 爷爷 "
    "同学 同志 律师 药师"
)
"""Titles that follow a Chinese name (longest first where one contains another)."""

JA_TITLES = words("さん さま 様 先生 くん 君 ちゃん 氏 殿 医師 看護師")
"""Honorifics and titles that follow a Japanese name."""

JA_NOT_NAMES = frozenset(
    words(
        "同 多 一 異 模 仕 有 態 皆 各 王 神 仏 "
        "客 お客 患者 奥 旦那 子供 子ども 家族 親御 母 父 兄 姉 "
        "弟 妹 娘 息子 孫 祖母 祖父 婆 爺 赤 "
        "坊 医者 お医者 担当 主治医 看護 先方 相手 彼 彼女 "
        "利用者 受診者 検診者 皆々 各位 殿方 貴殿 御中 後 外 "
        "内 中 上 下 前 本 当 同氏 両 その 此 "
        "学 大 小 新 旧 医 院 科 病 県 市 区 町 "
        "村 都 府 道 国 方 人 者 者様 全員 皆様 社長 部長 "
        "課長 校長 院長 所長 会長 店長 先 前任 後任"
    )
)
"""Words before a title that are not names (同様, 皆様, 患者様, お母さん...)."""

JA_SAMA_COMPOUNDS = frozenset(words("様子 様式 様々 様相 様態 様な 様に 様で 様だ"))
"""様 starting another word: 様子 and 様式 are not honorifics."""

JA_ONE_KANJI_SURNAMES = frozenset(words("林 森 原 南 西 東 北 岡 堀 関 辻 谷 沢 菅 楠 泉 畑 島"))
"""One-kanji Japanese surnames accepted before a title (longer names need two kanji)."""

EN_TITLES = ("Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Professor", "Doctor", "Nurse")

DOB_BEFORE = (
    "出生日期",
    "出生年月日",
    "出生于",
    "出生",
    "生日",
    "生于",
    "生年月日",
    "誕生日",
    "生まれ",
    "date of birth",
    "birth date",
    "birthdate",
    "birthday",
    "d.o.b",
    "dob",
    "born on",
    "born",
    "b.",
)
"""Words before a date that make it a date of birth (lower-cased for English)."""

DOB_AFTER = ("生まれ", "生", "出生", "出世", "年生")
"""Words right after a date that make it a date of birth (1985年3月3日生まれ)."""

NOT_AN_ID_BEFORE = (
    "批号",
    "批次",
    "生产批号",
    "订单",
    "单号",
    "发票",
    "快递",
    "运单",
    "编号",
    "货号",
    "ロット",
    "注文",
    "伝票",
    "製造番号",
    "型番",
    "lot",
    "batch",
    "order",
    "invoice",
    "tracking",
    "serial",
    "isbn",
    "doi",
    "nct",
    "ref",
    "catalog",
    "cat.",
    "sku",
    "version",
    "ver",
    "第",
    "§",
    "section",
    "article",
)
"""Words shortly before a number that make it something other than a personal identifier."""

MY_NUMBER_CONTEXT = ("マイナンバー", "個人番号", "my number", "mynumber", "個人番号カード")
PASSPORT_CONTEXT = ("护照", "パスポート", "旅券", "passport")
MRN_CONTEXT = (
    "病历号",
    "病案号",
    "住院号",
    "门诊号",
    "就诊卡号",
    "病人id",
    "患者id",
    "患者番号",
    "カルテ番号",
    "カルテno",
    "診察券番号",
    "患者id",
    "mrn",
    "medical record number",
    "medical record no",
    "medical record #",
    "patient id",
    "hospital number",
    "chart number",
)
"""Keywords right before a medical-record number (default MRN pattern)."""

IP_CONTEXT = ("ip", "地址", "アドレス", "address", "server", "服务器", "サーバ", "host", "主机")
POSTAL_CONTEXT = ("邮编", "邮政编码", "郵便番号", "〒", "zip", "postcode", "postal code")
