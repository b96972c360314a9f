"""Prometheus metrics from the controller's snapshot (prometheus_client does the text format)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..domain.store import STATES as STORE_STATES
from ..view import View


class _ViewCollector:
    def __init__(self, view: View, now: float) -> None:
        self.view, self.now = view, now

    def collect(self):
        v = self.view
        state = GaugeMetricFamily("bingobox_store_state", "1 for the store's current state", labels=["state"])
        for s in STORE_STATES:
            state.add_metric([s], float(v.get("state") == s))
        yield state
        yield GaugeMetricFamily("bingobox_shoppers_inside", "shoppers inside the store", value=v.get("inside", 0))
        yield GaugeMetricFamily("bingobox_snapshot_age_seconds", "age of the control loop's last snapshot",
                                value=max(0.0, self.now - v.get("t", 0)) if v.get("t") else float("nan"))
        counts = CounterMetricFamily("bingobox_events", "visits and their outcomes since start", labels=["event"])
        for k, n in sorted(v.get("counts", {}).items()):
            counts.add_metric([k], n)
        yield counts
        lat = GaugeMetricFamily("bingobox_latency_ms", "latency percentiles over the recent window",
                                labels=["path", "quantile"])
        for path, summary in sorted(v.get("latency", {}).items()):
            for q in ("p50", "p90", "p99", "max"):
                if q in summary:
                    lat.add_metric([path.removesuffix("_ms"), q], summary[q])
        yield lat
        charges = v.get("charges", {})
        intents = GaugeMetricFamily("bingobox_charge_intents", "charge intents by state", labels=["state"])
        for s, n in sorted(charges.get("intents", {}).items()):
            intents.add_metric([s], n)
        yield intents
        gw = charges.get("gateway_ok")
        yield GaugeMetricFamily("bingobox_gateway_up", "1 if the last gateway call got an answer",
                                value=float("nan") if gw is None else float(gw))
        online = GaugeMetricFamily("bingobox_device_online", "1 if the device answers", labels=["device", "kind"])
        for name, d in sorted(v.get("devices", {}).items()):
            online.add_metric([name, str(d.get("kind", ""))], float(bool(d.get("online"))))
        yield online
        rtt = GaugeMetricFamily("bingobox_bus_unit_rtt_ms", "Modbus round trip of each unit (recent requests)",
                                labels=["bus", "unit", "quantile"])
        timeouts = CounterMetricFamily("bingobox_bus_unit_timeouts", "requests a unit did not answer in time",
                                       labels=["bus", "unit"])
        breaker = GaugeMetricFamily("bingobox_bus_unit_breaker_open", "1 while a unit is not answering (asked "
                                    "again only every breaker_retry_s)", labels=["bus", "unit"])
        for name, b in sorted(v.get("buses", {}).items()):
            for u in b.get("units", []):
                labels = [name, str(u["unit"])]
                for q in ("p50", "p99", "max"):
                    if u["rtt_ms"].get(q) is not None:
                        rtt.add_metric([*labels, q], u["rtt_ms"][q])
                timeouts.add_metric(labels, u.get("no_reply", 0))
                breaker.add_metric(labels, float(u.get("breaker") == "open"))
        yield rtt
        yield timeouts
        yield breaker
        stock = GaugeMetricFamily("bingobox_shelf_items", "tagged items on each shelf", labels=["shelf", "product"])
        for shelf, items in sorted(v.get("stock", {}).items()):
            for product, n in items.items():
                stock.add_metric([shelf, product], n)
        yield stock
        weak = GaugeMetricFamily("bingobox_rfid_weak_tags", "shelf tags read in under half the recent rounds",
                                 labels=["shelf"])
        unknown = GaugeMetricFamily("bingobox_rfid_unknown_tags", "shelf tags the catalog does not know",
                                    labels=["shelf"])
        for shelf, h in sorted(v.get("rfid_health", {}).items()):
            weak.add_metric([shelf], len(h.get("weak", [])))
            unknown.add_metric([shelf], len(h.get("unknown", [])))
        yield weak
        yield unknown
        yield GaugeMetricFamily("bingobox_rfid_cross_read_tags", "tags present on more than one shelf reader",
                                value=len(v.get("cross_read", {})))
        rv = v.get("reviews")
        if rv:
            yield GaugeMetricFamily("bingobox_reviews_open", "visits waiting for an operator's decision",
                                    value=rv.get("open", 0))
            yield GaugeMetricFamily("bingobox_review_rate", "visits that entered the review queue / visits that "
                                    "ended, over the last 24 hours", value=rv.get("review_rate", 0.0))
            causes = GaugeMetricFamily("bingobox_reviews_24h", "visits that entered the review queue in the last 24 "
                                       "hours, by cause (a visit may have several)", labels=["cause"])
            for cause, n in sorted((rv.get("by_cause") or {}).items()):
                causes.add_metric([cause], n)
            yield causes


def exposition(view: View, now: float) -> bytes:
    registry = CollectorRegistry()
    registry.register(_ViewCollector(view, now))
    return generate_latest(registry)
