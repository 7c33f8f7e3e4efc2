"""Block Kit messages built by pure functions from view models (plain dicts).

Nothing here touches the database, the network or the clock: the dashboard comes
from the same dict as `signals health --json`, a task message from a task dict, and
``now`` is passed in. Every text that came from a user or from data is escaped
(``&``, ``<``, ``>``) so it cannot mention ``@channel``, link or inject markup, and
cut to fit; `fit` is the last guard that keeps any message inside Slack's limits.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# Slack's limits (API-NOTES C5), with a margin for the characters Slack counts twice.
MAX_BLOCKS = 50
SECTION_TEXT = 2900
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
FIELD_TEXT = 1900
MAX_FIELDS = 10
CONTEXT_ELEMENTS = 10
FALLBACK_TEXT = 3000

COMPONENTS = (
    ("activation_depth", "Activation depth"),
    ("usage_volume", "Usage volume"),
    ("health_status", "Health status"),
    ("frequency", "Frequency"),
    ("sophistication", "Sophistication"),
    ("growth", "Growth trajectory"),
)
STATE_MARKS = {
    "active": ":large_green_circle:",
    "broken": ":red_circle:",
    "idle": ":large_yellow_circle:",
    "installed": ":white_circle:",
    "uninstalled": ":black_circle:",
}
# Problems first: a CSM reads the top of the list.
STATE_ORDER = {"broken": 0, "idle": 1, "active": 2, "installed": 3, "uninstalled": 4}
BAND_MARKS = {"healthy": ":large_green_circle:", "watch": ":large_yellow_circle:"}
BAND_MARKS["at_risk"] = ":red_circle:"
TASK_STATUS = {
    "open": ":inbox_tray: Open",
    "claimed": ":raising_hand: Claimed",
    "done": ":white_check_mark: Done",
    "snoozed": ":zzz: Snoozed",
}
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# Action ids the app listens for.
PICK_ACCOUNT = "pick_account"
TASK_CLAIM = "task_claim"
TASK_DONE = "task_done"
TASK_SNOOZE = "task_snooze"


# ---------------------------------------------------------------- text helpers


def escape(text: Any) -> str:
    """Make data safe inside mrkdwn: no links, mentions or ``<!channel>``."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def safe(text: Any, limit: int = 200, *, one_line: bool = True) -> str:
    """Data as mrkdwn: control characters dropped, cut, then escaped without ever
    splitting an entity (the escaped form is at most ``limit`` characters)."""
    raw = _CONTROL.sub("", "" if text is None else str(text))
    if one_line:
        raw = " ".join(raw.split())
    out: list[str] = []
    size = 0
    for char in raw:
        piece = escape(char)
        if size + len(piece) > limit - 1:
            out.append("…")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def plain(text: Any, limit: int) -> str:
    """Data as plain_text: never interpreted, only cut (and never empty)."""
    raw = " ".join(_CONTROL.sub("", "" if text is None else str(text)).split())
    return clip(raw, limit) or "-"


def person(value: str | None) -> str:
    """A Slack user id becomes a mention; anything else (an e-mail) is shown as text."""
    if not value:
        return "nobody"
    if SLACK_USER.match(value):
        return f"<@{value}>"
    return safe(value, 80)


def money(value: Any) -> str:
    if value is None:
        return "-"
    return f"${float(value):,.0f}"


def per_day(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    for unit, size in (("M", 1_000_000), ("K", 1_000)):
        if number >= size:
            scaled = number / size
            return f"{scaled:.0f}{unit}/day" if scaled >= 10 else f"{scaled:.1f}{unit}/day"
    return f"{number:.0f}/day"


def percent(value: Any) -> str:
    """A rate given as a fraction 0-1."""
    if value is None:
        return "no attempts"
    return f"{float(value) * 100:.0f}% success"


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def ago(value: Any, now: datetime) -> str:
    at = _parse_time(value)
    if at is None:
        return "never"
    seconds = (now - at).total_seconds()
    if seconds < 0:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


def when(value: Any, now: datetime) -> str:
    """A due time: "in 3h", "2d overdue", or a date for far ones."""
    at = _parse_time(value)
    if at is None:
        return "no due time"
    seconds = (at - now).total_seconds()
    if seconds < 0:
        late = -seconds
        return (
            f"{int(late // 3600)}h overdue" if late < 172800 else f"{int(late // 86400)}d overdue"
        )
    if seconds < 172800:
        return f"in {int(seconds // 3600)}h"
    return at.strftime("%Y-%m-%d")


def trend(value: Any) -> str:
    if value is None:
        return "no history yet"
    number = int(value)
    arrow = ":arrow_upper_right:" if number > 0 else ":arrow_lower_right:" if number < 0 else ""
    return f"{number:+d} vs 30 days ago {arrow}".rstrip()


# ---------------------------------------------------------------- block helpers


def header(text: Any) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": plain(text, HEADER_TEXT)}}


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_TEXT)}} | extra


def context(*texts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": clip(t, SECTION_TEXT)} for t in texts[:CONTEXT_ELEMENTS]
        ],
    }


def plain_context(text: Any) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "plain_text", "text": plain(text, 1900)}]}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": plain(text, BUTTON_TEXT), "emoji": True},
        "action_id": action_id,
        "value": value[:BUTTON_VALUE],
    }
    if style:
        element["style"] = style
    return element


def lines_to_sections(lines: Sequence[str], *, title: str | None = None) -> list[dict[str, Any]]:
    """Pack lines into as few sections as fit under the section limit."""
    blocks: list[dict[str, Any]] = []
    current = [title] if title else []
    size = len(title) + 1 if title else 0
    for line in lines:
        line = clip(line, SECTION_TEXT)
        if current and size + len(line) + 1 > SECTION_TEXT:
            blocks.append(section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        blocks.append(section("\n".join(current)))
    return blocks


def fit(
    blocks: list[dict[str, Any]], *, tail: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Keep a message within 50 blocks; when cut, the last block says so."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    note = tail or context(f"_{len(blocks) - MAX_BLOCKS + 1} more blocks left out_")
    return blocks[: MAX_BLOCKS - 1] + [note]


def message(text: str, blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A message body for chat.postMessage / chat.update / respond."""
    return {"text": clip(text, FALLBACK_TEXT), "blocks": fit(blocks), **extra}


# ---------------------------------------------------------------- the dashboard


def _integration_line(item: Mapping[str, Any], now: datetime) -> str:
    state = item.get("state") or "installed"
    mark = STATE_MARKS.get(state, ":grey_question:")
    name = safe(item.get("name") or item.get("key"), 80)
    parts = [state]
    if state not in ("installed", "uninstalled"):
        parts += [
            percent(item.get("success_rate_7d")),
            per_day(item.get("records_per_day")),
            f"last good sync {ago(item.get('last_success_at'), now)}",
        ]
    return f"{mark} *{name}* · {' · '.join(parts)}"


def _integration_blocks(
    integrations: Sequence[Mapping[str, Any]], now: datetime, *, shown: int
) -> list[dict[str, Any]]:
    states = Counter(str(i.get("state") or "installed") for i in integrations)
    summary = ", ".join(
        f"{n} {s}" for s, n in sorted(states.items(), key=lambda x: STATE_ORDER.get(x[0], 9))
    )
    title = f"*Integrations ({len(integrations)})*" + (f"  {summary}" if summary else "")
    if not integrations:
        return [section(title + "\nNo integrations installed yet.")]
    ordered = sorted(
        integrations,
        key=lambda i: (
            STATE_ORDER.get(str(i.get("state")), 9),
            -float(i.get("records_per_day") or 0),
            str(i.get("name") or i.get("key") or ""),
        ),
    )
    lines = [_integration_line(i, now) for i in ordered[:shown]]
    rest = ordered[shown:]
    if rest:
        counts = Counter(str(i.get("state") or "installed") for i in rest)
        lines.append(
            f"_…and {len(rest)} more: "
            + ", ".join(
                f"{n} {s}"
                for s, n in sorted(counts.items(), key=lambda x: STATE_ORDER.get(x[0], 9))
            )
            + " (`signals health` lists them all)_"
        )
    return lines_to_sections(lines, title=title)


def _component_lines(components: Mapping[str, Any]) -> list[str]:
    lines = []
    known = dict(COMPONENTS)
    names = [k for k, _ in COMPONENTS if k in components] + [
        k for k in components if k not in known
    ]
    for key in names:
        comp = components.get(key) or {}
        label = known.get(key, key.replace("_", " ").capitalize())
        score = comp.get("score")
        shown = f"*{int(round(score))}*/100" if score is not None else "-"
        reason = safe(comp.get("reason") or "", 300)
        lines.append(f"{label}: {shown}" + (f" · {reason}" if reason else ""))
    return lines


def _signal_line(signal: Mapping[str, Any], now: datetime) -> str:
    kind = str(signal.get("kind") or "signal").replace("_", " ")
    details = signal.get("details") or {}
    about = details.get("integration") or details.get("reason") or signal.get("subject")
    text = f"• {safe(kind, 60)}"
    if about:
        text += f": {safe(about, 120)}"
    return text + f" (since {ago(signal.get('fired_at'), now)})"


def _task_line(task: Mapping[str, Any], now: datetime) -> str:
    status = str(task.get("status") or "open")
    owner = task.get("claimed_by") if status == "claimed" else task.get("owner")
    return (
        f"• {safe(task.get('title') or task.get('signal_kind') or 'task', 150)}"
        f" · {safe(status, 20)} · {person(owner)} · {when(task.get('due_at'), now)}"
    )


# Labels of the record ids an account row carries (its ``salesforce_id`` and
# ``hubspot_id`` columns); the composing layer hands in the destinations' own labels.
ACCOUNT_RECORD_LABELS = {"salesforce": "Salesforce", "hubspot": "HubSpot"}


def crm_links(
    crm: Mapping[str, Any] | None,
    urls: Mapping[str, str],
    labels: Mapping[str, str] | None = None,
) -> list[str]:
    """``Salesforce: <url|001A>`` when a link template is known, else the id as text:
    one line per destination whose ``<name>_id`` the account has."""
    out = []
    named = {**ACCOUNT_RECORD_LABELS, **(labels or {})}
    for name in [*named, *(n for n in urls if n not in named)]:
        label = named.get(name, name)
        record = (crm or {}).get(f"{name}_id")
        if not record:
            continue
        template = urls.get(name)
        record_text = safe(record, 60)
        if template and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(record)):
            out.append(f"{label}: <{template.replace('{id}', str(record))}|{record_text}>")
        else:
            out.append(f"{label}: {record_text}")
    return out


def dashboard(
    view: Mapping[str, Any],
    *,
    now: datetime,
    max_integrations: int = 15,
    crm_urls: Mapping[str, str] | None = None,
    crm_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The seeds' dashboard card for one account, from the `signals health` view model."""
    name = view.get("name") or view.get("account_id")
    band = view.get("band")
    score = view.get("score")
    score_text = (
        f"*{score}*/100 {BAND_MARKS.get(str(band), '')} {safe(str(band).replace('_', ' '), 20)}"
        if score is not None
        else "not scored yet"
    )
    fields = [
        f"*Plan*\n{safe(view.get('plan') or '-', 80)}",
        f"*Segment*\n{safe(str(view.get('segment') or '-').replace('_', '-'), 40)}",
        f"*MRR*\n{money(view.get('mrr'))}",
        f"*Score*\n{score_text}",
        f"*Trend*\n{trend(view.get('trend_30d'))}",
    ]
    if view.get("stage") == "onboarding":
        fields.append("*Stage*\nonboarding (first 90 days)")
    blocks: list[dict[str, Any]] = [
        header(f"{name} · integration health"),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": clip(f, FIELD_TEXT)} for f in fields[:MAX_FIELDS]
            ],
        },
        {"type": "divider"},
    ]
    blocks += _integration_blocks(list(view.get("integrations") or []), now, shown=max_integrations)
    components = view.get("components") or {}
    if components:
        blocks.append({"type": "divider"})
        blocks += lines_to_sections(_component_lines(components), title="*Health signals*")
    signals = list(view.get("signals") or [])
    tasks = list(view.get("tasks") or [])
    if signals:
        lines = [_signal_line(s, now) for s in signals[:5]]
        if len(signals) > 5:
            lines.append(f"_…and {len(signals) - 5} more_")
        blocks += lines_to_sections(lines, title=f"*Open signals ({len(signals)})*")
    if tasks:
        lines = [_task_line(t, now) for t in tasks[:5]]
        if len(tasks) > 5:
            lines.append(f"_…and {len(tasks) - 5} more_")
        blocks += lines_to_sections(lines, title=f"*Open tasks ({len(tasks)})*")
    footer = [f"`{safe(view.get('account_id'), 80)}`"]
    footer += crm_links(view.get("crm"), crm_urls or {}, crm_labels)
    blocks.append(context(" · ".join(footer)))
    text = f"{plain(name, 200)}: integration health {score if score is not None else '-'}/100"
    return message(text, blocks)


# ---------------------------------------------------------------- answers to the command


def help_message(command: str) -> dict[str, Any]:
    usage = "\n".join(
        [
            f"`{command} ACCOUNT` · an account's integration health: id, name, domain or part of a name",
            f"`{command} at-risk` · the accounts most at risk",
            f"`{command} expansion` · the accounts ready for expansion",
            f"`{command} help` · this message",
        ]
    )
    return message(
        f"Usage: {command} ACCOUNT | at-risk | expansion | help",
        [header("Integration health"), section(usage)],
    )


def pick_list(query: str, accounts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several accounts matched: one button per candidate."""
    blocks: list[dict[str, Any]] = [
        section(f"*{len(accounts)} accounts match.* Pick one:"),
        plain_context(f"You asked for: {query}"),
    ]
    for i, acc in enumerate(accounts[:10]):
        detail = " · ".join(
            safe(v, 60)
            for v in (
                acc.get("domain"),
                str(acc.get("segment") or "").replace("_", "-"),
                acc.get("plan"),
            )
            if v
        )
        blocks.append(
            section(
                f"*{safe(acc.get('name') or acc['account_id'], 150)}*"
                + (f"\n{detail}" if detail else ""),
                block_id=f"pick_{i}",
                accessory=button("Show", PICK_ACCOUNT, f"id:{acc['account_id']}"),
            )
        )
    return message(f"{len(accounts)} accounts match; pick one", blocks)


def no_match(query: str, suggestions: Sequence[str]) -> dict[str, Any]:
    """Nothing matched (or nothing this channel may see): the nearest names."""
    blocks: list[dict[str, Any]] = [
        section("*No account matches.*"),
        plain_context(f"You asked for: {query}" if query else "You asked for nothing"),
    ]
    if suggestions:
        blocks.append(section("Nearest names:"))
        blocks.append(
            {
                "type": "actions",
                "block_id": "suggestions",
                "elements": [
                    button(name, f"{PICK_ACCOUNT}_{i}", f"name:{name}")
                    for i, name in enumerate(suggestions[:5])
                ],
            }
        )
    else:
        blocks.append(section("Try an account id, a domain, or part of the name."))
    return message("No account matches", blocks)


def account_list(
    title: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    total: int,
    empty: str,
) -> dict[str, Any]:
    """`at-risk` / `expansion`: the top accounts of a segment, one line each."""
    lines = []
    for row in rows:
        band = str(row.get("band") or "")
        lines.append(
            f"{BAND_MARKS.get(band, '')} *{safe(row.get('name') or row['account_id'], 120)}*"
            f" · {row.get('score', '-')}/100 · {money(row.get('mrr'))}"
            + (f" · {safe(row.get('reason'), 200)}" if row.get("reason") else "")
        )
    blocks: list[dict[str, Any]] = [header(f"{title} ({total})")]
    if lines:
        blocks += lines_to_sections(lines)
        if total > len(rows):
            blocks.append(context(f"Showing {len(rows)} of {total}."))
    else:
        blocks.append(section(empty))
    return message(f"{title}: {total}", blocks)


def notice(text: str, *, mention_users: bool = False) -> dict[str, Any]:
    """A one-line answer (errors, refusals) that never carries a trace. With
    ``mention_users``, Slack user ids in it (a task refusal's "claimed by W0ALEX")
    become mentions after escaping."""
    shown = safe(text, SECTION_TEXT - 200, one_line=False)
    if mention_users:
        shown = _USER_IN_TEXT.sub(r"<@\1>", shown)
    return message(text, [section(shown)])


_USER_IN_TEXT = re.compile(r"\b([UW][A-Z0-9]{5,})\b")


# ---------------------------------------------------------------- playbook tasks


def task_message(task: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    """A playbook task with Claim / Done / Snooze 7d buttons matching its status."""
    status = str(task.get("status") or "open")
    task_id = str(task["id"])
    account = (
        "All accounts"
        if task.get("account_id") == "*"
        else safe(task.get("account_name") or task.get("account_id"), 150)
    )
    title = safe(task.get("title") or "Playbook task", 300)
    body = safe(task.get("body") or "", 2000, one_line=False)
    state = TASK_STATUS.get(status, safe(status, 20))
    if status == "claimed":
        state += f" by {person(task.get('claimed_by'))}"
    elif status == "done" and task.get("done_by"):
        state += f" by {person(task.get('done_by'))}"
    elif status == "snoozed":
        state += f" until {when(task.get('snoozed_until'), now)}"
    if task.get("changed_at") and status != "open":
        state += f" · {ago(task.get('changed_at'), now)}"
    blocks: list[dict[str, Any]] = [
        section(f"*{title}*\n{account}" + (f"\n{body}" if body else "")),
        context(
            f"Owner: {person(task.get('owner_slack') or task.get('owner'))}",
            f"Due: {when(task.get('due_at'), now)}",
            f"Signal: {safe(str(task.get('signal_kind') or '-').replace('_', ' '), 60)}",
            f"Task {safe(task_id, 20)}",
        ),
        section(f"*Status:* {state}", block_id=f"task_status_{task_id}"[:255]),
    ]
    buttons = []
    if status in ("open", "snoozed"):
        buttons.append(button("Claim", TASK_CLAIM, task_id, style="primary"))
    if status != "done":
        buttons.append(button("Done", TASK_DONE, task_id))
    if status in ("open", "claimed"):
        buttons.append(button("Snooze 7d", TASK_SNOOZE, task_id))
    if buttons:
        blocks.append({"type": "actions", "block_id": f"task_{task_id}"[:255], "elements": buttons})
    return message(f"Task: {plain(task.get('title') or 'playbook task', 200)} ({status})", blocks)


def reminder_message(task: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    who = person(
        task.get("claimed_by")
        if task.get("status") == "claimed"
        else task.get("owner_slack") or task.get("owner")
    )
    text = (
        f":alarm_clock: {who}: *{safe(task.get('title') or 'task', 300)}* "
        f"({safe(task.get('account_name') or task.get('account_id'), 150)}) is "
        f"{when(task.get('due_at'), now)}."
    )
    return message(f"Overdue: {plain(task.get('title') or 'task', 200)}", [section(text)])


def digest_message(
    day: str,
    risks: Sequence[Mapping[str, Any]],
    expansions: Sequence[Mapping[str, Any]],
    *,
    per_list: int = 20,
) -> dict[str, Any]:
    """The daily digest: accounts with new risk signals and newly expansion-ready ones."""

    def lines(items: Sequence[Mapping[str, Any]]) -> list[str]:
        out = [
            f"• *{safe(i.get('name') or i['account_id'], 120)}* · "
            + ", ".join(safe(k.replace("_", " "), 40) for k in i.get("kinds", []))
            + (f" · {i['score']}/100" if i.get("score") is not None else "")
            for i in items[:per_list]
        ]
        if len(items) > per_list:
            out.append(f"_…and {len(items) - per_list} more_")
        return out

    blocks: list[dict[str, Any]] = [header(f"Integration signals digest · {day}")]
    blocks += lines_to_sections(
        lines(risks) or ["No new risks."], title=f"*:red_circle: New risks ({len(risks)})*"
    )
    blocks += lines_to_sections(
        lines(expansions) or ["No new expansion-ready accounts."],
        title=f"*:rocket: New expansion-ready ({len(expansions)})*",
    )
    return message(
        f"Digest {day}: {len(risks)} new risks, {len(expansions)} new expansion-ready", blocks
    )
