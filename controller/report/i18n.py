"""Words and number formats of the html report, in Indonesian (default) and English.

Every figure a reader sees goes through Babel, so rupiah, thousands separators, decimal
commas, percentages and month names are written as each language writes them
(id: Rp2.300.000.000, 12,5%, 1 Oktober 2026; en: IDR 2,300,000,000, 12.5%, 1 October
2026). English uses en_GB so dates keep the day-month order officials read in Indonesian.
Times are shown in the period's time zone (the settings' office-hours zone).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal, format_percent

from controller.errors import KendaliError

LOCALES = {"id": "id_ID", "en": "en_GB"}

# One table per language; the template reads them as t.<key>. Keys with {} are filled
# with str.format by html.py (the values are already formatted and escaped by jinja).
STRINGS: dict[str, dict[str, str]] = {
    "id": {
        "title": "Laporan Jaringan Intranet Pemerintah Daerah",
        "subtitle": "Kebutuhan bandwidth dan biaya per OPD",
        "simulated_title": "SIMULATED",
        "simulated_banner": "SIMULATED · SIMULASI: data buatan untuk demonstrasi, bukan pengukuran nyata",
        "period": "Periode",
        "timezone": "Zona waktu",
        "generated": "Dibuat",
        "days": "{} hari",
        "hours": "{} jam",
        "budget": "Anggaran jaringan setahun",
        "volume": "Volume data dalam periode",
        "volume_detail": "unduh {down} · unggah {up}",
        "cost_per_mbps": "Biaya per Mbit/s yang benar-benar dipakai",
        "cost_per_mbps_detail": "per tahun, dari rata-rata pemakaian {mbps} Mbit/s",
        "opds_total": "OPD dalam laporan",
        "n_raise": "perlu dinaikkan",
        "n_lower": "dapat diturunkan",
        "n_keep": "tetap",
        "answer": (
            "Dari {opds} OPD, {raise_} perlu batas bandwidth yang lebih besar, {lower} dapat diturunkan, "
            "dan {keep} sudah sesuai; setiap Mbit/s yang benar-benar dipakai berbiaya {cost} setahun."
        ),
        "answer_no_use": (
            "Dari {opds} OPD, {raise_} perlu batas bandwidth yang lebih besar, {lower} dapat diturunkan, "
            "dan {keep} sudah sesuai; belum ada pemakaian terukur untuk menghitung biaya per Mbit/s."
        ),
        "to_raise": "Naikkan",
        "to_lower": "Turunkan",
        "no_opds": "Tidak ada OPD dengan riwayat pemakaian dalam periode ini, jadi belum ada yang dapat dilaporkan.",
        "ranking": "Peringkat OPD menurut pemakaian dan biaya",
        "ranking_top": "{shown} OPD teratas dari {total}.",
        "chart_use": "Volume per bulan (GB)",
        "chart_cost": "Biaya setahun (juta Rp)",
        "by_cap": "menurut batas",
        "by_use": "menurut pemakaian",
        "cost_section": "Biaya per OPD",
        "cost_intro": (
            "Anggaran {budget} dibagi dua cara: menurut batas bandwidth yang diberikan (unduh + unggah) "
            "dan menurut data yang benar-benar dipakai. Kedua kolom masing-masing berjumlah tepat sebesar anggaran."
        ),
        "opd": "OPD",
        "cap": "Batas",
        "cap_share": "Porsi batas",
        "use_share": "Porsi pakai",
        "monthly_volume": "Volume/bulan",
        "cost_by_cap": "Biaya menurut batas",
        "cost_by_use": "Biaya menurut pemakaian",
        "idr_per_mbps": "Rp per Mbit/s dipakai",
        "total": "Jumlah",
        "no_cap": "tanpa batas",
        "needs_section": "Kebutuhan per OPD",
        "subnets_title": "Subnet lain yang dihitung (bukan OPD)",
        "subnets_note": (
            "Lalu lintas subnet ini juga melewati batas milik OPD, jadi tidak ikut peringkat maupun pembagian biaya."
        ),
        "needs_intro": (
            "Laju dalam Mbit/s dari sampel 5 menit. Jam kerja: {days}, {start}–{end} {tz}, kecuali hari libur. "
            "p95: 95% waktu pemakaian di bawah angka ini (cara ISP menagih)."
        ),
        "direction": "Arah",
        "down": "Unduh",
        "up": "Unggah",
        "office": "Jam kerja",
        "outside": "Di luar jam kerja",
        "mean": "rerata",
        "p95": "p95",
        "peak": "puncak",
        "at_cap": "Di batas",
        "dropped": "Terbuang",
        "advice": "Saran",
        "action_raise": "naikkan",
        "action_lower": "turunkan",
        "action_keep": "tetap",
        "use_section": "Pemakaian dari waktu ke waktu",
        "use_intro": (
            "Rata-rata per jam dalam Mbit/s. Garis putus-putus: batas (berubah bila kebijakan diubah). "
            "Pemakaian yang menempel di garis batas berarti OPD tertahan oleh batasnya."
        ),
        "legend_down": "unduh",
        "legend_up": "unggah",
        "legend_cap_down": "batas unduh",
        "legend_cap_up": "batas unggah",
        "no_history": "Tidak ada riwayat dalam periode ini.",
        "links_section": "Pemakaian jalur antar-switch",
        "links_intro": (
            "Warna jalur: p95 pemakaian terhadap kapasitas, arah yang lebih sibuk. Abu-abu: kapasitas tidak diketahui. "
            "Garis tebal: uplink ke ISP."
        ),
        "legend_util": "p95 pemakaian jalur terhadap kapasitas",
        "util_low": "< 50%",
        "util_mid": "50–80%",
        "util_high": "≥ 80%",
        "util_unknown": "kapasitas tidak diketahui",
        "uplink": "uplink",
        "link": "Jalur",
        "capacity": "Kapasitas",
        "a_to_b": "a→b",
        "b_to_a": "b→a",
        "no_links": "Tidak ada data jalur dalam periode ini.",
        "links_top": "{shown} jalur tersibuk dari {total}.",
        "uplink_section": "Uplink ke ISP",
        "uplink_intro": (
            "Kapasitas yang dibeli dibandingkan dengan jumlah p95 semua OPD. Jumlah p95 melebihi kebutuhan "
            "sesungguhnya karena OPD tidak mencapai puncaknya bersamaan; p95 terukur di uplink (bila ada) "
            "adalah angka yang sebenarnya."
        ),
        "purchased": "Dibeli",
        "sum_p95_down": "Jumlah p95 unduh OPD",
        "sum_p95_up": "Jumlah p95 unggah OPD",
        "measured_p95": "p95 terukur di uplink",
        "measured_peak": "Puncak terukur di uplink",
        "uplink_unknown": "Kapasitas uplink yang dibeli belum diisi (pengaturan uplink_mbps).",
        "uplink_ratio": "Jumlah p95 unduh OPD adalah {pct} dari kapasitas yang dibeli.",
        "rules_section": "Cara membaca laporan ini",
        "rules": "\n".join(
            [
                "Pemakaian diukur oleh controller Kendali di setiap switch OPD, per 5 menit, "
                "dalam dua arah: unduh (ke OPD) dan unggah (dari OPD).",
                "Rata-rata adalah total data dibagi waktu; p95 adalah laju yang tidak dilampaui 95% waktu, "
                "cara ISP menagih; puncak adalah sampel 5 menit tertinggi.",
                "Jam kerja: hari kerja yang bukan hari libur, dari jam mulai sampai jam selesai; "
                "waktu lain dihitung di luar jam kerja.",
                "Di batas: sampel saat batas membuang data atau pemakaian ≥ 95% batas. "
                "Terbuang: data yang dibuang batas karena melebihinya.",
                "Naikkan: di batas lebih dari 10% jam kerja dan ada data terbuang; usulan = p95 kebutuhan jam kerja "
                "× 1,2, dibulatkan ke atas ke 5 Mbit/s (minimal batas + 5 Mbit/s).",
                "Turunkan: p95 seluruh periode di bawah 40% batas dan ada riwayat ≥ 7 hari; "
                "usulan = p95 × 1,5, dibulatkan ke atas ke 5 Mbit/s (minimal 5 Mbit/s).",
                "Tetap: selain itu, juga bila riwayat kurang dari 1 hari.",
                "Biaya menurut batas membagi anggaran menurut batas unduh + unggah; biaya menurut pemakaian "
                "menurut data yang dikirim. Pembulatan ke rupiah utuh tidak menghilangkan satu rupiah pun.",
                "Biaya per Mbit/s dipakai = biaya menurut pemakaian ÷ rata-rata laju (unduh + unggah).",
            ]
        ),
        "notes": "Catatan",
        "page": "halaman",
        "footer": "Kendali · laporan jaringan",
        "weekdays": "Sen,Sel,Rab,Kam,Jum,Sab,Min",
        "na": "–",
    },
    "en": {
        "title": "Regional Government Intranet Report",
        "subtitle": "Bandwidth needs and cost per OPD",
        "simulated_title": "SIMULATED",
        "simulated_banner": "SIMULATED: made-up data for demonstration, not a measurement",
        "period": "Period",
        "timezone": "Time zone",
        "generated": "Generated",
        "days": "{} days",
        "hours": "{} hours",
        "budget": "Annual network budget",
        "volume": "Data volume in the period",
        "volume_detail": "download {down} · upload {up}",
        "cost_per_mbps": "Cost per Mbit/s actually used",
        "cost_per_mbps_detail": "a year, from a mean use of {mbps} Mbit/s",
        "opds_total": "OPDs in this report",
        "n_raise": "to raise",
        "n_lower": "can be lowered",
        "n_keep": "keep",
        "answer": (
            "Of {opds} OPDs, {raise_} need a higher bandwidth cap, {lower} can be lowered and {keep} are "
            "right as they are; each Mbit/s actually used costs {cost} a year."
        ),
        "answer_no_use": (
            "Of {opds} OPDs, {raise_} need a higher bandwidth cap, {lower} can be lowered and {keep} are "
            "right as they are; no use was measured yet to work out a cost per Mbit/s."
        ),
        "to_raise": "Raise",
        "to_lower": "Lower",
        "no_opds": "No OPD has usage history in this period, so there is nothing to report yet.",
        "ranking": "OPDs ranked by use and by cost",
        "ranking_top": "Top {shown} of {total} OPDs.",
        "chart_use": "Volume per month (GB)",
        "chart_cost": "Cost a year (million IDR)",
        "by_cap": "by cap",
        "by_use": "by use",
        "cost_section": "Cost per OPD",
        "cost_intro": (
            "The budget of {budget} split two ways: by the bandwidth caps given (download + upload) and by the "
            "data actually used. Each column adds up to exactly the budget."
        ),
        "opd": "OPD",
        "cap": "Cap",
        "cap_share": "Share of caps",
        "use_share": "Share of use",
        "monthly_volume": "Volume/month",
        "cost_by_cap": "Cost by cap",
        "cost_by_use": "Cost by use",
        "idr_per_mbps": "Rp per Mbit/s used",
        "total": "Total",
        "no_cap": "no cap",
        "needs_section": "Needs per OPD",
        "subnets_title": "Other counted subnets (not OPDs)",
        "subnets_note": (
            "Their traffic also passes the OPDs' own meters, so they are left out of the ranking and the cost split."
        ),
        "needs_intro": (
            "Rates in Mbit/s from 5-minute samples. Office hours: {days}, {start}–{end} {tz}, holidays excepted. "
            "p95: use stays below this figure 95% of the time (how ISPs bill)."
        ),
        "direction": "Direction",
        "down": "Download",
        "up": "Upload",
        "office": "Office hours",
        "outside": "Outside office hours",
        "mean": "mean",
        "p95": "p95",
        "peak": "peak",
        "at_cap": "At cap",
        "dropped": "Dropped",
        "advice": "Advice",
        "action_raise": "raise",
        "action_lower": "lower",
        "action_keep": "keep",
        "use_section": "Use over time",
        "use_intro": (
            "Hourly means in Mbit/s. Dashed line: the cap (it steps when the policy changed). "
            "Use that sits on the cap line means the OPD is held back by its cap."
        ),
        "legend_down": "download",
        "legend_up": "upload",
        "legend_cap_down": "download cap",
        "legend_cap_up": "upload cap",
        "no_history": "No history in this period.",
        "links_section": "Use of the links between switches",
        "links_intro": (
            "Link colour: p95 use against capacity, busier direction. Grey: capacity unknown. "
            "Thick line: the ISP uplink."
        ),
        "legend_util": "p95 link use against capacity",
        "util_low": "< 50%",
        "util_mid": "50–80%",
        "util_high": "≥ 80%",
        "util_unknown": "capacity unknown",
        "uplink": "uplink",
        "link": "Link",
        "capacity": "Capacity",
        "a_to_b": "a→b",
        "b_to_a": "b→a",
        "no_links": "No link data in this period.",
        "links_top": "The {shown} busiest of {total} links.",
        "uplink_section": "ISP uplink",
        "uplink_intro": (
            "Purchased capacity against the sum of every OPD's p95. The sum overstates the real need because "
            "OPDs do not peak at the same time; the p95 measured on the uplink (where known) is the real figure."
        ),
        "purchased": "Purchased",
        "sum_p95_down": "Sum of OPDs' p95 download",
        "sum_p95_up": "Sum of OPDs' p95 upload",
        "measured_p95": "p95 measured on the uplink",
        "measured_peak": "Peak measured on the uplink",
        "uplink_unknown": "The purchased uplink capacity is not set (setting uplink_mbps).",
        "uplink_ratio": "The OPDs' p95 download adds up to {pct} of the purchased capacity.",
        "rules_section": "How to read this report",
        "rules": "\n".join(
            [
                "Use is measured by the Kendali controller at each OPD's switch, every 5 minutes, in two "
                "directions: download (to the OPD) and upload (from it).",
                "Mean is total data over time; p95 is the rate not exceeded 95% of the time, as ISPs bill; "
                "peak is the highest 5-minute sample.",
                "Office hours: working days that are not holidays, from the start to the end time; "
                "all other time counts as outside office hours.",
                "At cap: samples where the cap dropped data or use was ≥ 95% of the cap. "
                "Dropped: data the cap threw away because it was over.",
                "Raise: at the cap more than 10% of office hours and data dropped; suggestion = p95 of office "
                "demand × 1.2, rounded up to 5 Mbit/s (at least cap + 5 Mbit/s).",
                "Lower: p95 over the period under 40% of the cap with ≥ 7 days of history; "
                "suggestion = p95 × 1.5, rounded up to 5 Mbit/s (at least 5 Mbit/s).",
                "Keep: otherwise, and whenever there is less than 1 day of history.",
                "Cost by cap splits the budget by download + upload caps; cost by use by data delivered. "
                "Rounding to whole rupiah loses no rupiah.",
                "Rp per Mbit/s used = cost by use ÷ mean rate (download + upload).",
            ]
        ),
        "notes": "Notes",
        "page": "page",
        "footer": "Kendali · network report",
        "weekdays": "Mon,Tue,Wed,Thu,Fri,Sat,Sun",
        "na": "–",
    },
}

# Notes the data layer writes in English (spec: "B translates known keys or shows as is").
NOTES_ID = {
    "no usage history in the period": "tidak ada riwayat pemakaian dalam periode ini",
}
DAY_KEYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def strings(lang: str) -> dict[str, str]:
    if lang not in STRINGS:
        raise KendaliError(f"report language {lang!r} is not known: use one of {', '.join(sorted(STRINGS))}")
    return STRINGS[lang]


class Fmt:
    """Number, money and date formatting for one language and one time zone."""

    def __init__(self, lang: str, timezone: str) -> None:
        strings(lang)
        self.lang = lang
        self.locale = LOCALES[lang]
        try:
            self.tz = ZoneInfo(timezone)
        except (KeyError, ValueError) as e:  # ZoneInfoNotFoundError is a KeyError
            raise KendaliError(f"report period time zone {timezone!r} is not an IANA zone") from e
        self.na = STRINGS[lang]["na"]

    def idr(self, x: int | float | None) -> str:
        if x is None:
            return self.na
        # en: "IDR 2,300,000,000" (a no-break space keeps code and amount on one line).
        fmt = "¤#,##0" if self.lang == "id" else "¤\u00a0#,##0"
        return format_currency(round(x), "IDR", locale=self.locale, format=fmt, currency_digits=False)

    def num(self, x: int | float | None, digits: int = 0) -> str:
        if x is None:
            return self.na
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(x, format=pattern, locale=self.locale)

    def pct(self, x: float | None, digits: int = 0) -> str:
        if x is None:
            return self.na
        pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
        return format_percent(x, format=pattern, locale=self.locale)

    def mbps(self, bps: int | float | None) -> str:
        """A rate in Mbit/s: one decimal below 100, none above; '<0.1' rather than a false 0.0."""
        if bps is None:
            return self.na
        m = bps / 1e6
        if 0 < m < 0.05:
            return "<" + self.num(0.1, 1)
        return self.num(m, 1 if m < 100 else 0)

    def kbps_as_mbps(self, kbps: int | None) -> str:
        """A cap or suggestion: whole Mbit/s as written in policies (150, not 150,0)."""
        if kbps is None:
            return self.na
        return self.num(kbps // 1000) if kbps % 1000 == 0 else self.mbps(kbps * 1000)

    def gb(self, nbytes: int | float | None) -> str:
        if nbytes is None:
            return self.na
        g = nbytes / 1e9
        if g >= 1000:
            return self.num(g / 1000, 1) + " TB"
        return self.num(g, 1 if g < 100 else 0) + " GB"

    def parse(self, iso: str) -> datetime:
        d = datetime.fromisoformat(iso)
        if d.tzinfo is None:  # the data layer writes offsets; a naive time is taken as UTC
            d = d.replace(tzinfo=ZoneInfo("UTC"))
        return d.astimezone(self.tz)

    def date(self, d: datetime) -> str:
        return format_date(d, "long", locale=self.locale)

    def short_date(self, d: datetime) -> str:
        return format_date(d, "d MMM", locale=self.locale)

    def datetime(self, iso: str) -> str:
        d = self.parse(iso)
        # The locale's own time pattern: Indonesian writes 09.00, English 09:00.
        return f"{self.date(d)}, {format_time(d, 'short', tzinfo=self.tz, locale=self.locale)} {d.tzname()}"

    def period(self, frm: str, to: str) -> str:
        """'1 Oktober 2026 – 30 Oktober 2026': an end at local midnight shows the last day it includes."""
        a, b = self.parse(frm), self.parse(to)
        if (b.hour, b.minute, b.second, b.microsecond) == (0, 0, 0, 0) and b > a:
            b = b - timedelta(days=1)
        if a.date() == b.date():
            return self.date(a)
        return f"{self.date(a)} – {self.date(b)}"

    def weekdays(self, days: list[str]) -> str:
        names = STRINGS[self.lang]["weekdays"].split(",")
        idx = [DAY_KEYS.index(d) for d in days if d in DAY_KEYS]
        # Mon..Fri reads as a range; anything else as a list.
        if idx and idx == list(range(idx[0], idx[-1] + 1)) and len(idx) > 2:
            return f"{names[idx[0]]}–{names[idx[-1]]}"
        return ", ".join(names[i] for i in idx)

    def notes(self, doc: dict[str, Any]) -> list[str]:
        """The document's notes in this language (English where no translation came with them)."""
        en = list(doc.get("notes") or [])
        if self.lang == "id":
            translated = doc.get("notes_id")
            if isinstance(translated, list) and len(translated) == len(en):
                return [str(x) for x in translated]
            return [NOTES_ID.get(n, n) for n in en]
        return en
