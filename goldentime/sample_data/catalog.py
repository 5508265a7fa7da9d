"""Static vocabulary of the simulated shop: categories, products, search queries, pages,
acquisition channels, referrers, campaigns, Korean names and time zones.

Everything here is either a constant or built deterministically from a numpy Generator, so
the catalogue is part of what a seed reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import numpy as np

SITE = "https://www.goldentime.shop"
SITE_NAME = "골든타임몰"
CURRENCY = "KRW"

# --------------------------------------------------------------------------------------
# categories: (slug, Korean name, median price KRW, popularity weight, product nouns, queries)
CATEGORIES: list[tuple[str, str, int, float, list[str], list[str]]] = [
    ("fashion", "패션의류", 39_000, 0.18,
     ["니트 스웨터", "데님 팬츠", "롱 패딩", "후드 티셔츠", "린넨 셔츠", "슬랙스", "플리스 자켓",
      "트렌치 코트", "맨투맨", "가디건"],
     ["니트", "패딩", "청바지", "후드티", "코트", "가디건"]),
    ("beauty", "뷰티", 22_000, 0.16,
     ["수분 크림", "선크림 SPF50+", "클렌징 폼", "쿠션 팩트", "립 틴트", "토너 패드", "비타민 세럼",
      "시트 마스크 10매", "아이크림", "핸드크림"],
     ["선크림", "수분크림", "쿠션", "립틴트", "세럼", "마스크팩"]),
    ("food", "식품", 15_000, 0.15,
     ["제주 감귤 5kg", "유기농 현미 10kg", "한우 불고기 세트", "포기김치 3kg", "하루 견과 30봉",
      "그릭 요거트", "드립백 커피 30개입", "수제 그래놀라", "닭가슴살 10팩", "홍삼 스틱"],
     ["감귤", "닭가슴살", "김치", "견과류", "커피", "홍삼"]),
    ("living", "생활용품", 18_000, 0.13,
     ["극세사 이불", "호텔 수건 5장", "친환경 주방세제", "접이식 수납박스", "디퓨저", "보온 텀블러",
      "욕실 매트", "전기 포트", "밀폐용기 세트", "암막 커튼"],
     ["이불", "수건", "텀블러", "수납함", "디퓨저", "커튼"]),
    ("digital", "디지털/가전", 120_000, 0.12,
     ["무선 이어폰", "블루투스 스피커", "보조배터리", "스마트 워치", "기계식 키보드", "무선 마우스",
      "공기청정기", "노트북 거치대", "고속 충전기", "태블릿 케이스"],
     ["무선 이어폰", "보조배터리", "키보드", "공기청정기", "스마트워치", "충전기"]),
    ("sports", "스포츠/레저", 45_000, 0.10,
     ["요가 매트", "러닝화", "캠핑 의자", "등산 배낭", "덤벨 세트", "자전거 헬멧", "골프공 12구",
      "래쉬가드", "폼롤러", "원터치 텐트"],
     ["요가매트", "러닝화", "캠핑의자", "등산가방", "텐트", "골프공"]),
    ("kids", "유아동", 28_000, 0.08,
     ["유아 물티슈", "아기 로션", "블록 장난감", "유아 내복", "그림책 세트", "아기 수저 세트",
      "키즈 우비", "기저귀 대형", "젖병 세트", "유아 식탁의자"],
     ["물티슈", "기저귀", "장난감", "그림책", "아기로션", "내복"]),
    ("pets", "반려동물", 24_000, 0.08,
     ["강아지 사료 6kg", "고양이 모래", "고양이 츄르", "강아지 간식", "캣타워", "펫 방석",
      "배변 패드", "자동 급식기", "하네스", "고양이 스크래쳐"],
     ["강아지 사료", "고양이 모래", "츄르", "배변패드", "캣타워", "강아지 간식"]),
]
N_CATEGORIES = len(CATEGORIES)
PRODUCTS_PER_CATEGORY = 25
MODIFIERS = [("베이직", 0.8), ("데일리", 0.9), ("에센셜", 1.0), ("클래식", 1.05), ("라이트", 0.85),
             ("플러스", 1.2), ("시그니처", 1.4), ("오가닉", 1.3), ("프리미엄", 1.7), ("스페셜 에디션", 2.2)]

# --------------------------------------------------------------------------------------
# pages (the shop's own URLs). Keys are laid out as:
#   0 home | 1..8 categories | products | search pages (one per query) | fixed pages
P_HOME = 0
FIXED_PAGES = [  # (path, Segment page name, title)
    ("/cart", "Cart", f"장바구니 | {SITE_NAME}"),
    ("/checkout", "Checkout", f"주문/결제 | {SITE_NAME}"),
    ("/order/complete", "Order Complete", f"주문 완료 | {SITE_NAME}"),
    ("/promo/signup", "Signup Promotion", f"신규 회원 15% 쿠폰 | {SITE_NAME}"),
    ("/signup", "Signup", f"회원가입 | {SITE_NAME}"),
]

# --------------------------------------------------------------------------------------
# acquisition / session channels.
# Channel groups (what marketers report on):
G_DIRECT, G_ORGANIC, G_PRICE, G_PAID_SOCIAL, G_REFERRAL, G_EMAIL, G_KAKAO, G_PUSH = range(8)
GROUP_NAMES = ["direct", "organic_search", "price_comparison", "paid_social", "referral",
               "email", "kakao", "push"]

# Sub-channels: (group, utm source, utm medium, external referrer, weight within group)
SUBCHANNELS: list[tuple[int, str | None, str | None, str, float]] = [
    (G_DIRECT, None, None, "", 1.0),
    (G_ORGANIC, None, None, "https://www.google.com/", 0.42),
    (G_ORGANIC, None, None, "https://search.naver.com/search.naver", 0.48),
    (G_ORGANIC, None, None, "https://search.daum.net/search", 0.10),
    (G_PRICE, "danawa", "price_comparison", "https://prod.danawa.com/info/", 0.7),
    (G_PRICE, "enuri", "price_comparison", "https://www.enuri.com/detail.jsp", 0.3),
    (G_PAID_SOCIAL, "instagram", "paid_social", "https://l.instagram.com/", 0.65),
    (G_PAID_SOCIAL, "facebook", "paid_social", "https://l.facebook.com/", 0.35),
    (G_REFERRAL, None, None, "https://blog.naver.com/PostView.naver", 0.40),
    (G_REFERRAL, None, None, "https://cafe.naver.com/ArticleRead.nhn", 0.30),
    (G_REFERRAL, None, None, "https://brunch.co.kr/", 0.12),
    (G_REFERRAL, None, None, "https://www.youtube.com/", 0.18),
    (G_EMAIL, "goldentime_crm", "email", "", 1.0),
    (G_KAKAO, "kakao", "message", "", 1.0),
    (G_PUSH, "app_push", "push", "", 1.0),
]
SUB_GROUP = np.array([s[0] for s in SUBCHANNELS], dtype=np.int8)
SUB_EMAIL = next(i for i, s in enumerate(SUBCHANNELS) if s[0] == G_EMAIL)
SUB_KAKAO = next(i for i, s in enumerate(SUBCHANNELS) if s[0] == G_KAKAO)
SUB_PUSH = next(i for i, s in enumerate(SUBCHANNELS) if s[0] == G_PUSH)
# UTM campaign names used by the channels that carry UTM but are not CRM messages
UTM_CAMPAIGN_NAMES = {
    "danawa": ["pc_feed"],
    "enuri": ["pc_feed"],
    "instagram": ["winter_sale_2026", "new_year_2026", "signup_coupon", "retargeting_cart"],
    "facebook": ["winter_sale_2026", "signup_coupon", "retargeting_cart"],
}

# message channels (CRM): index 0 email, 1 push, 2 kakao
MSG_CHANNELS = ["email", "push", "kakao"]
MSG_SUB = [SUB_EMAIL, SUB_PUSH, SUB_KAKAO]

# --------------------------------------------------------------------------------------
# people
SURNAMES = [("김", "kim", .215), ("이", "lee", .147), ("박", "park", .084), ("최", "choi", .047),
            ("정", "jung", .043), ("강", "kang", .024), ("조", "cho", .021), ("윤", "yoon", .021),
            ("장", "jang", .020), ("임", "lim", .017), ("한", "han", .015), ("오", "oh", .015),
            ("서", "seo", .014), ("신", "shin", .014), ("권", "kwon", .014), ("황", "hwang", .013),
            ("안", "ahn", .013), ("송", "song", .012), ("류", "ryu", .011), ("홍", "hong", .011)]
GIVEN_NAMES = [("민준", "minjun"), ("서준", "seojun"), ("도윤", "doyun"), ("예준", "yejun"),
               ("시우", "siwoo"), ("하준", "hajun"), ("지호", "jiho"), ("주원", "juwon"),
               ("지후", "jihu"), ("준우", "junwoo"), ("서연", "seoyeon"), ("서윤", "seoyun"),
               ("지우", "jiwoo"), ("서현", "seohyun"), ("하은", "haeun"), ("하윤", "hayun"),
               ("민서", "minseo"), ("지유", "jiyu"), ("윤서", "yunseo"), ("채원", "chaewon"),
               ("지민", "jimin"), ("수빈", "subin"), ("예은", "yeeun"), ("현우", "hyunwoo"),
               ("지훈", "jihoon"), ("영희", "younghee"), ("철수", "chulsoo"), ("미경", "mikyung"),
               ("상훈", "sanghoon"), ("은지", "eunji"), ("혜진", "hyejin"), ("성민", "sungmin"),
               ("동현", "donghyun"), ("유진", "yujin"), ("수진", "sujin"), ("정훈", "junghoon"),
               ("경민", "kyungmin"), ("소연", "soyeon"), ("태현", "taehyun"), ("나연", "nayeon")]
EMAIL_DOMAINS = [("naver.com", .42), ("gmail.com", .30), ("daum.net", .09), ("hanmail.net", .07),
                 ("kakao.com", .07), ("nate.com", .05)]
# (IANA name, UTC offset seconds used for time-of-day, share of people)
TIMEZONES = [("Asia/Seoul", 9 * 3600, 0.955), ("America/Los_Angeles", -8 * 3600, 0.012),
             ("America/New_York", -5 * 3600, 0.010), ("Asia/Tokyo", 9 * 3600, 0.008),
             ("Europe/London", 0, 0.006), ("Asia/Singapore", 8 * 3600, 0.006),
             ("Australia/Sydney", 11 * 3600, 0.003)]
DEVICE_TYPES = ["desktop", "mobile", "tablet"]
SIGNUP_METHODS = ["email", "kakao", "naver", "apple"]
SIGNUP_METHOD_P = [0.40, 0.35, 0.20, 0.05]

# time-of-day weights by local hour (Korean lunch and evening peaks, quiet 2-7h)
HOUR_WEIGHTS = np.array([3.0, 1.8, 1.0, 0.6, 0.4, 0.4, 0.7, 1.5, 2.5, 3.2, 3.8, 4.2,
                         5.0, 4.8, 4.2, 4.0, 4.0, 4.2, 4.6, 5.2, 6.2, 6.8, 6.4, 4.8])
WEEKDAY_WEIGHTS = np.array([1.0, 0.97, 0.97, 1.0, 1.05, 1.15, 1.18])  # Mon..Sun

# CRM campaign calendar: (weekday Mon=0, local hour, minute, channel index, name, night send)
CAMPAIGN_CALENDAR = [
    (1, 10, 0, 0, "주간 뉴스레터", False),
    (4, 11, 30, 0, "주말 특가 메일", False),
    (0, 12, 30, 1, "점심 타임딜 푸시", False),
    (3, 19, 30, 1, "오늘의 추천 푸시", False),
    (5, 21, 30, 1, "심야 한정 쿠폰 푸시", True),
    (2, 18, 0, 2, "카카오 친구 특가", False),
    (6, 10, 0, 2, "카카오 주말 기획전", False),
]


@dataclass(frozen=True)
class Catalog:
    # products (sorted by category, then popularity rank)
    product_id: list[str]
    product_name: list[str]
    product_category: np.ndarray  # int
    product_price: np.ndarray  # int64 KRW
    category_cdf: np.ndarray  # per product: category + cumulative popularity within category
    cat_first_product: np.ndarray
    price_order: np.ndarray  # product indices sorted by price
    sorted_prices: np.ndarray
    # queries
    query_text: list[str]
    query_category: np.ndarray
    cat_first_query: np.ndarray
    cat_n_queries: np.ndarray
    # pages and URL table
    page_path: list[str]
    page_name: list[str]
    page_title: list[str]
    page_url: list[str]
    url_table: list[str]  # page urls followed by external referrers (one per sub-channel)
    p_category0: int
    p_product0: int
    p_search0: int
    p_cart: int
    p_checkout: int
    p_order_complete: int
    p_promo_signup: int
    p_signup: int
    ref_external0: int  # url_table index of sub-channel 0's referrer


def build_catalog(rng: np.random.Generator) -> Catalog:
    pid, pname, pcat, pprice, cdf = [], [], [], [], []
    cat_first = []
    for c, (_slug, _kname, median, _w, nouns, _q) in enumerate(CATEGORIES):
        cat_first.append(len(pid))
        combos = [(m, n) for n in range(len(nouns)) for m in range(len(MODIFIERS))]
        pick = rng.choice(len(combos), PRODUCTS_PER_CATEGORY, replace=False)
        # Zipf-like popularity within the category
        pop = 1.0 / np.arange(1, PRODUCTS_PER_CATEGORY + 1) ** 0.9
        pop = np.cumsum(pop / pop.sum())
        pop[-1] = 1.0
        for k, ci in enumerate(pick):
            m, n = combos[ci]
            raw = median * MODIFIERS[m][1] * rng.lognormal(0.0, 0.75)
            price = max(1_900, int(np.ceil(raw / 1000.0)) * 1000 - 100)  # 12,900 style
            pid.append(f"P{c + 1}{rng.integers(0, 10_000):04d}{k:02d}")
            pname.append(f"{MODIFIERS[m][0]} {nouns[n]}")
            pcat.append(c)
            pprice.append(price)
            cdf.append(c + pop[k])
    pcat_a = np.array(pcat, dtype=np.int16)
    pprice_a = np.array(pprice, dtype=np.int64)
    price_order = np.argsort(pprice_a, kind="stable")

    qtext, qcat, cat_first_q, cat_nq = [], [], [], []
    for c, cat in enumerate(CATEGORIES):
        cat_first_q.append(len(qtext))
        cat_nq.append(len(cat[5]))
        for q in cat[5]:
            qtext.append(q)
            qcat.append(c)

    path, name, title, url = [], [], [], []

    def add(p: str, n: str, t: str, u: str | None = None) -> int:
        path.append(p)
        name.append(n)
        title.append(t)
        url.append(u or SITE + p)
        return len(path) - 1

    add("/", "Home", f"{SITE_NAME} - 오늘의 특가")
    p_category0 = len(path)
    for slug, kname, *_ in CATEGORIES:
        add(f"/category/{slug}", "Category", f"{kname} | {SITE_NAME}")
    p_product0 = len(path)
    for i in range(len(pid)):
        add(f"/product/{pid[i]}", "Product", f"{pname[i]} | {SITE_NAME}")
    p_search0 = len(path)
    for q in qtext:
        add("/search", "Search", f"'{q}' 검색결과 | {SITE_NAME}", f"{SITE}/search?q={quote(q)}")
    fixed = [add(p, n, t) for p, n, t in FIXED_PAGES]
    url_table = list(url) + [s[3] for s in SUBCHANNELS]
    return Catalog(
        product_id=pid, product_name=pname, product_category=pcat_a, product_price=pprice_a,
        category_cdf=np.array(cdf), cat_first_product=np.array(cat_first),
        price_order=price_order, sorted_prices=pprice_a[price_order],
        query_text=qtext, query_category=np.array(qcat, dtype=np.int16),
        cat_first_query=np.array(cat_first_q), cat_n_queries=np.array(cat_nq),
        page_path=path, page_name=name, page_title=title, page_url=url, url_table=url_table,
        p_category0=p_category0, p_product0=p_product0, p_search0=p_search0,
        p_cart=fixed[0], p_checkout=fixed[1], p_order_complete=fixed[2],
        p_promo_signup=fixed[3], p_signup=fixed[4], ref_external0=len(url),
    )
