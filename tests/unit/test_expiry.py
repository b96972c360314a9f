"""Batches and markdowns: the batch list and the catalog's GTIN and markdown columns are validated like the config;
an item is priced at the moment it was taken, on the store's date (its time zone), its markdown on the receipt; an
expired item is not charged, listed and alarmed; the shelves' lots near or past their date are listed."""

import json
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from bingobox.config import ConfigError, StockConfig, load_store_config
from bingobox.core.events import FaceDecided
from bingobox.domain import sgtin
from bingobox.domain.batches import Batch, Batches, markdown_pct, marked_down, parse_markdowns
from bingobox.domain.catalog import Basket, Catalog, CatalogError, Product
from bingobox.domain.faces import FaceDecision as Decision
from tests.unit.test_store_core import Rig

SHANGHAI = ZoneInfo("Asia/Shanghai")
GTIN = "06901234000047"
T0 = 1_800_000_000.0  # 2027-01-15 16:00 in Shanghai (the rig's clock starts here)
ONIGIRI = Product("onigiri", "Onigiri tuna", 590, GTIN, parse_markdowns("2:30,0:50"))
LOTS = [Batch(GTIN, 1, 999, "L-fresh", date(2027, 1, 25)), Batch(GTIN, 1000, 1999, "L-soon", date(2027, 1, 16)),
        Batch(GTIN, 2000, 2999, "L-old", date(2027, 1, 14))]


def tag(serial: int) -> str:
    return sgtin.encode(GTIN, 7, serial)


def catalog() -> Catalog:
    return Catalog({}, {GTIN: ONIGIRI}, Batches(LOTS), SHANGHAI)


def test_markdown_steps_are_parsed_checked_and_rounded_in_the_shopper_s_favour():
    assert parse_markdowns("2:30, 0:50%") == ((2, 30), (0, 50)) and parse_markdowns("") == ()
    assert [markdown_pct(((2, 30), (0, 50)), d) for d in (5, 3, 2, 1, 0)] == [0, 0, 30, 30, 50]
    assert marked_down(590, 30) == 413 and marked_down(333, 50) == 166  # (166.5 → 166 fen)
    for bad, why in [("2", "days:percent"), ("2:0", "percent 1..99"), ("400:10", "days 0..365"),
                     ("2:30,2:40", "twice"), ("2:50,0:30", "must not be smaller")]:
        with pytest.raises(ValueError, match=why):
            parse_markdowns(bad)


def test_the_price_is_the_batch_s_on_the_store_s_date_and_an_expired_item_is_off_sale():
    c = catalog()
    assert c.lookup(tag(5)) is ONIGIRI and c.lookup("3074257BF7194E4000001A85") is None  # another GTIN
    fresh, soon, old, unlisted = (c.price(tag(s), T0) for s in (5, 1005, 2005, 5000))
    assert (fresh.unit_fen, fresh.pct_off, fresh.batch.lot) == (590, 0, "L-fresh")
    assert (soon.unit_fen, soon.pct_off) == (413, 30)  # one day left: 30 %
    assert old.expired and old.unit_fen == 0
    assert unlisted.batch is None and unlisted.unit_fen == 590  # a serial of no listed batch: the list price
    # 16:00 UTC is midnight in Shanghai: the soon lot's last day there (50 %), still the day before in UTC
    midnight = 1_800_000_000.0 + 8 * 3600
    assert c.price(tag(1005), midnight - 1).pct_off == 30 and c.price(tag(1005), midnight).pct_off == 50
    utc = Catalog({}, {GTIN: ONIGIRI}, Batches(LOTS))
    assert utc.price(tag(1005), midnight).pct_off == 30


def test_a_basket_prices_each_item_when_it_was_taken_and_lists_the_expired():
    b = Basket()
    midnight = 1_800_000_000.0 + 8 * 3600
    b.add(tag(1005), "shelf:s1", midnight - 60)  # taken before midnight: 30 % off, even if charged after it
    b.add(tag(1006), "shelf:s1", midnight + 60)
    b.add(tag(5), "shelf:s1", midnight - 60)
    b.add(tag(2005), "shelf:s1", midnight - 60)
    b.add("E2806894000050240009AAAA", "exit_reader")  # not in the catalog
    lines, unknown, expired = b.priced(catalog(), midnight + 120)
    assert lines == [
        {"sku": "onigiri", "name": "Onigiri tuna", "qty": 1, "unit_fen": 590, "amount_fen": 590},
        {"sku": "onigiri", "name": "Onigiri tuna -30%", "qty": 1, "unit_fen": 413, "amount_fen": 413},
        {"sku": "onigiri", "name": "Onigiri tuna -50%", "qty": 1, "unit_fen": 295, "amount_fen": 295}]
    assert unknown == ["E2806894000050240009AAAA"]
    assert expired == [{"epc": tag(2005), "sku": "onigiri", "name": "Onigiri tuna", "lot": "L-old",
                        "expires": "2027-01-14"}]
    long = Catalog({}, {GTIN: Product("o", "x" * 100, 590, GTIN, ((2, 30),))}, Batches(LOTS), SHANGHAI)
    b2 = Basket()
    b2.add(tag(1005), "shelf:s1", T0)
    assert b2.lines(long, T0)[0][0]["name"] == "x" * 95 + " -30%"  # (the gateway's 100 characters)


def _write(tmp_path, catalog_rows, batch_rows, extra=""):
    (tmp_path / "catalog.csv").write_text("epc_prefix,gtin,sku,name,price_fen,markdowns\n" + catalog_rows)
    (tmp_path / "batches.csv").write_text("gtin,serial_from,serial_to,lot,expires\n" + batch_rows)
    cfg = tmp_path / "store.toml"
    cfg.write_text(f'catalog = "{tmp_path / "catalog.csv"}"\nbatches = "{tmp_path / "batches.csv"}"\n'
                   f'[store]\nid = "s1"\n{extra}')
    return cfg


def test_a_bad_batch_list_or_catalog_is_refused_with_every_problem_and_its_line(tmp_path):
    good = f",{GTIN},onigiri,Onigiri,590,2:30\n"
    cfg = _write(tmp_path, good, f"{GTIN},1,9,A,2027-01-20\n", 'timezone = "Asia/Shanghai"\n')
    assert load_store_config(cfg).store.tz() == SHANGHAI
    cfg = _write(tmp_path, good + ",06901234000048,x,X,1,\n,,y,Y,1,5:x\n",
                 f"{GTIN},1,9,A,2027-01-20\n{GTIN},5,20,B,2027-01-21\n06901234000016,1,2,C,2027-01-20\n"
                 f"{GTIN},9,3,D,2027-02-30\n{GTIN},30,40,bad lot,2027-01-20\n")
    with pytest.raises(ConfigError) as e:
        load_store_config(cfg)
    text = str(e.value)
    for want in ["catalog.csv:3: gtin: '06901234000048' is not a GTIN-14", "catalog.csv:4: epc_prefix: a row needs",
                 "catalog.csv:4: markdowns:"]:
        assert want in text
    cfg = _write(tmp_path, good, f"{GTIN},1,9,A,2027-01-20\n{GTIN},5,20,B,2027-01-21\n06901234000016,1,2,C,"
                 f"2027-01-20\n{GTIN},9,3,D,2027-02-30\n{GTIN},30,40,bad lot,2027-01-20\n")
    with pytest.raises(ConfigError) as e:
        load_store_config(cfg)
    text = str(e.value)
    for want in ["batches.csv:3: serial_from: serials 5..20 overlap line 2's",
                 "batches.csv:4: gtin: 06901234000016 is not in the catalog", "batches.csv:5: serial_to: 3 is below",
                 "batches.csv:5: expires:", "batches.csv:6: lot:"]:
        assert want in text
    with pytest.raises(ConfigError, match=r"differs from hours\.timezone"):
        load_store_config(_write(tmp_path, good, "", 'timezone = "Asia/Shanghai"\n[store.hours]\n'
                                 'timezone = "UTC"\ndaily = "07:00-23:00"\n'))
    with pytest.raises(CatalogError, match="listed on line 2 too"):
        (tmp_path / "dup.csv").write_text("epc_prefix,sku,name,price_fen\nE2,a,A,1\nE3,a,A,2\n")
        Catalog.load(tmp_path / "dup.csv")


class BatchRig(Rig):
    catalog = catalog()

    def start(self):
        self.cfg.stock = StockConfig(minimum={}, carries={})
        super().start()


@pytest.fixture
def rig(tmp_path):
    r = BatchRig(tmp_path / "store.db")
    yield r
    r.journal.close()


def test_a_walk_out_across_midnight_charges_each_item_its_price_when_taken_and_never_an_expired_one(rig):
    rig.clock.t = 1_800_000_000.0 + 8 * 3600 - 200  # 23:56:40 in Shanghai
    v = rig.enter("acc_1")
    for s in (5, 1005, 2005):  # fresh, in its markdown days, expired
        rig.shelf("tag_gone", tag(s))
    rig.at(300)  # past midnight: the soon lot's last day (50 %)
    rig.shelf("tag_gone", tag(1006))
    rig.restart()  # (when each was taken survives a restart)
    rig.at(5)
    rig.reader.read(rig.clock.t - 0.3, tag(5), tag(1005), tag(1006), tag(2005), n=20)
    rig.core.handle(FaceDecided(Decision(v["id"], 0.4, 0.2, "matched", v["id"]), rig.clock.t - 0.1, {}))
    rig.run()
    rig.send()
    rig.door("exit", "door_opened")
    assert [c["amount_fen"] for c in rig.client.charges] == [590 + 413 + 295]
    ev = dict(rig.events(v["id"]))
    assert [(li["name"], li["unit_fen"]) for li in ev["receipt"]["lines"]] == [
        ("Onigiri tuna", 590), ("Onigiri tuna -30%", 413), ("Onigiri tuna -50%", 295)]
    assert [x["lot"] for x in ev["expired_taken"]["items"]] == ["L-old"]
    assert "expired_taken" in json.loads(rig.visit_of("acc_1")["flags"]) and "expired_taken" in rig.alarms()
    assert rig.journal.one("SELECT count(*) FROM reviews")[0] == 0  # sure, listed: not a visit to review


def test_the_shelves_list_lots_near_or_past_their_date_and_alarm_once_per_expired_lot(rig):
    for s in (5, 6, 1005, 2005, 2006):
        rig.shelf("tag_seen", tag(s))
    rig.at(40)  # (after the shelves' first rounds)
    assert rig.alarms().count("expired_on_shelf") == 1
    assert rig.core.stock.status()["expiring"] == [
        {"lot": "L-old", "sku": "onigiri", "expires": "2027-01-14", "days_left": -1, "count": 2, "pct_off": 100,
         "expired": True},
        {"lot": "L-soon", "sku": "onigiri", "expires": "2027-01-16", "days_left": 1, "count": 1, "pct_off": 30,
         "expired": False}]
    rig.at(10)
    assert rig.alarms().count("expired_on_shelf") == 1  # once while it is out
    rig.shelf("tag_gone", tag(2005))
    rig.shelf("tag_gone", tag(2006))
    rig.shelf("tag_seen", tag(2007))  # pulled, then one more put out by mistake: said again
    assert rig.alarms().count("expired_on_shelf") == 2
