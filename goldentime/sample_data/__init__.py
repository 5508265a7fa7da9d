"""Seeded, vectorised sample data for Golden Time: a Korean online shop's Segment feed.

``generate(landing_dir, customers=20_000, start=date(2026, 1, 1), days=90, seed=42, ...)``
writes the landing zone described in ``docs/landing_zone.md`` and returns a
:class:`GenerationSummary` whose counts reconcile with the files
(``lines_written == events + duplicates_written + malformed_written``).
``generate(..., events=1_000_000)`` (or :func:`target_customers_for_events`) sizes the
population for roughly that many valid events. The same arguments give the same bytes.
Nothing runs per event in Python: numpy builds the columns, polars encodes the JSON.
Command line: ``python -m goldentime.sample_data DIR --events 1000000``.

Layout (one file per feed per landing day = the UTC day ``receivedAt`` falls on)::

    events/date=YYYY-MM-DD/events-YYYY-MM-DD.jsonl.gz   (.jsonl with gzip=False)
    orders/date=YYYY-MM-DD/orders-YYYY-MM-DD.csv

Lines inside an events file are in arrival (``receivedAt``) order. Landing days run from
``start`` to a few days past ``start + days - 1`` (late arrivals, next-day duplicates, refunds).

The behaviour model (knobs: :class:`BehaviourParams`; groups in ``catalog.GROUP_NAMES``)
---------------------------------------------------------------------------------------
* **Shop.** KRW prices; 200 products in 8 categories (slug in ``properties.category``:
  fashion, beauty, food, living, digital, sports, kids, pets), log-normal (heavy-tailed)
  prices ending in 900, Zipf popularity inside a category, 6 Korean search queries per category.
* **People.** ``customers`` people arrive uniformly over the window (more on weekends), each
  with an acquisition channel — direct 18%, organic search 30% (referrer google / naver /
  daum, no UTM), price comparison 12% (``utm source=danawa|enuri, medium=price_comparison``),
  paid social 28% (``source=instagram|facebook, medium=paid_social``), referral 12% (naver
  blog/cafe, brunch, youtube referrer, no UTM) — a favourite category, a time zone (95.5%
  Asia/Seoul), a visit rate ~ Gamma and an interest period ~ Exponential, after which they
  visit at 10% of the rate (churn). Returning visits come through direct / organic / their own
  channel / retargeting. CRM visits: ``source=goldentime_crm medium=email``,
  ``source=kakao medium=message``, ``source=app_push medium=push``, utm name = campaign_id.
* **Channels differ.** Non-purchase visits have per-channel bounce / search / add-to-cart /
  checkout probabilities (paid social: 62% bounce, 7% add; price comparison lands on a product
  page, 30% add); purchase visits favour direct, organic and price comparison, and price
  comparison orders are ~28% smaller. Result: price comparison converts best with the lowest
  order value, paid social brings many visits and converts worst.
* **Identity.** Per acquisition channel 15-50% sign up, in their k-th visit (k ~ Geometric(0.55)):
  ``page /promo/signup`` (70%) or ``/signup`` → ``identify`` (userId + anonymousId + traits) →
  ``alias`` (previousId = anonymousId = the device cookie, userId) → ``track Signed Up``
  (properties method, promo). Earlier events of that device carry only ``anonymousId``; from the
  identify on, calls carry both. 25% of members get a second device from a random later time:
  its first visit stays anonymous (unless it is a purchase), the next starts with an
  ``identify`` (login). 18% of members re-identify later with changed traits (a consent
  withdrawn 60%, night consent granted 15%, new phone 15%, new email 10%) — latest identify wins.
  Anonymous visitors also open ``/promo/signup`` without signing up (25% of paid-social visits).
* **Traits.** email (unique; 5% in messy case / leading space), phone (unique 010 numbers in 5
  formats: ``010-1234-5678``, ``01012345678``, ``+82 10-1234-5678``, ``+821012345678``,
  ``010 1234 5678``), name (Korean), timezone, consent_email/sms/push/kakao/night (62/45/50/66/22%
  at signup), created_at (the signup identify, +09:00).
* **Purchases (BG/NBD + Gamma-Gamma).** Members buy with probability 55-88% by channel; the
  first purchase is in the signup visit (45%) or ~Exp(6 days) later. Then purchases follow a
  Poisson process with rate lambda ~ Gamma(r=0.4, alpha=8.7 days) (x channel factor), and after
  every purchase the customer drops out with p ~ Beta(a, b) (mean 0.2-0.45 by channel), so
  activity decays at different speeds. Order value ~ Gamma(p=6.25, nu), nu ~ Gamma(q=1.8,
  gamma=7700 KRW): ~60k KRW mean, heavy tail; the top 20% of buyers bring ~70% of revenue.
  Order lines are picked by price to match the value (1-3 lines, quantity 1-5). Each purchase is
  preceded by ~0.8 research visits (cart abandonment is common).
* **Funnel inside a visit.** landing ``page`` → [``Products Searched`` + ``page /search``]
  → (``page /product/<id>`` + ``Product Viewed``)×n → ``Product Added``×k + ``page /cart`` →
  ``page /checkout`` + ``Checkout Started`` → ``Order Completed`` + ``page /order/complete``.
  Events are seconds apart (log-normal gaps by step, < 15 min); visits of one person are at
  least 40 minutes apart (a 30-minute sessionisation recovers them exactly); time of day follows
  Korean lunch and evening peaks in the person's time zone.
* **CRM messages.** A weekly calendar (email Tue 10:00 / Fri 11:30, push Mon 12:30 / Thu 19:30 /
  Sat 21:30 night send, kakao Wed 18:00 / Sun 10:00 KST) reaches members with the consent (night
  send: also consent_night). Each member has a favourite channel (email 35 / push 25 / kakao 40%)
  they respond to 7x more; churned members respond 4x less. Calls: ``Email Opened``,
  ``Email Clicked``, ``Push Opened``, ``Kakao Clicked`` (properties campaign_id, campaign_name,
  channel; userId only, no context, no sentAt — a cloud source); 70% of clicks / push opens start
  a visit through that channel, and 22% of purchase visits come through the favourite channel
  right after a click on its latest campaign.
* **Clocks.** Web/app calls have ``sentAt`` (send delay: desktop ~0.25 s, mobile ~1.5 s, up to
  60 s) and ``receivedAt`` (+20-600 ms). 30% of Seoul devices write ``+09:00`` local timestamps
  (timestamp and sentAt), the rest ``Z``; receivedAt is always ``Z``. 2% of devices have a skewed
  clock (minutes, hours or ~a day, either sign) applied to timestamp and sentAt alike, so
  ``receivedAt - (sentAt - timestamp)`` recovers the true time; 3% of devices send no sentAt
  (never skewed).

The mess (rates are arguments; counts are in the summary)
----------------------------------------------------------
* ``late_rate``: events whose sentAt/receivedAt are 1-3 days after their true time, so they land
  in a later day's file (``late_events``). A handful of other events cross UTC midnight between
  timestamp and receivedAt naturally (<0.01%).
* ``duplicate_rate``: an exact copy of a line (same bytes, same messageId) written again: 70% in
  the same file within 2 minutes of receipt, 30% at the start of the next day's file. The
  original always comes first.
* ``malformed_rate``: extra lines (own fresh messageId, never a duplicate of a valid call), kinds
  in :data:`MALFORMED_KINDS`, at least one of each when the count allows: truncated_json,
  json_array, missing_type, unknown_type (purchase, pageview, click, transaction, impression),
  track_without_event, missing_timestamp, bad_timestamp (``2026-13-45T25:61:00Z``,
  ``not-a-timestamp``, empty, ``2026-02-30T10:00:00Z``, ``31/01/2026 14:03``, ``yesterday``),
  future_timestamp (timestamp +4..40 years; sentAt/receivedAt unchanged, so even the corrected
  time is years ahead), no_ids (neither userId nor anonymousId), invalid_utf8 (a CP949-encoded
  page title inside an otherwise valid line).

Orders CSV
----------
``order_id,user_id,ordered_at,status,currency,revenue,item_count``; ``ordered_at`` is the
order's true time at second precision with ``+09:00``; it lands in the UTC day of that time.
Each ``completed`` row matches one ``Order Completed`` call (order_id, userId, revenue =
sum of price x quantity of ``properties.products``, item_count = sum of quantities).
``cancelled`` rows: separate order ids from identified abandoned checkouts (no Order Completed).
``refunded`` rows: a completed order appearing again, same order_id, in a later day's file
(1-14 days later) — the order feed is a change feed; the latest row per order_id wins.
"""

from .generator import (MALFORMED_KINDS, GenerationSummary, generate, summary_json,
                        target_customers_for_events)
from .simulate import DEFAULT_PARAMS, BehaviourParams

__all__ = ["generate", "target_customers_for_events", "GenerationSummary", "MALFORMED_KINDS",
           "BehaviourParams", "DEFAULT_PARAMS", "summary_json"]
