"""Which CRM record each account belongs to: its CRM id, a match remembered from an
earlier run, or its domain (normalised on our side, because CRMs compare raw strings:
``https://www.acme.com/`` is not ``ACME.COM`` to them). No match, or more than one,
leaves the account unmatched with the reason; nothing is guessed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from integration_signals.store.accounts import normalize_domain
from integration_signals.syncs.ledger import SyncAccount

DomainFinder = Callable[[Sequence[str]], dict[str, list[str]]]


class Found(dict[str, list[str]]):
    """A finder's answer: normalised domain -> record ids, plus ``problems``: domain ->
    why its lookup cannot be trusted (the CRM answered in an unexpected shape). Such a
    domain matches nothing this run; its accounts are unmatched with the reason."""

    def __init__(
        self, ids: dict[str, list[str]] | None = None, problems: dict[str, str] | None = None
    ):
        super().__init__(ids or {})
        self.problems: dict[str, str] = dict(problems or {})


@dataclass
class Matches:
    record_of: dict[str, str] = field(default_factory=dict)  # account id -> record id
    found_by_domain: dict[str, str] = field(default_factory=dict)  # new, to remember
    unmatched: dict[str, str] = field(default_factory=dict)  # account id -> reason


def match_accounts(
    accounts: Sequence[SyncAccount],
    remembered: Mapping[str, str],
    *,
    crm: str,
    id_column: str,
    finder: DomainFinder | None,
    canonical: Callable[[str], str] = str,
) -> Matches:
    out = Matches()
    wanted: dict[str, list[str]] = {}  # normalised domain -> account ids
    for acc in accounts:
        account_id = acc.values.account_id
        if acc.crm_id:
            out.record_of[account_id] = canonical(acc.crm_id)
        elif account_id in remembered:
            out.record_of[account_id] = remembered[account_id]
        else:
            domain = normalize_domain(acc.domain)
            if domain is None:
                out.unmatched[account_id] = f"no {id_column} and no domain to match on"
            elif finder is None:
                out.unmatched[account_id] = (
                    f"no {id_column}; matching by domain {domain} needs {crm} credentials"
                )
            else:
                wanted.setdefault(domain, []).append(account_id)
    if wanted:
        assert finder is not None  # accounts only wait for a domain lookup when there is one
        found = finder(sorted(wanted))
        problems: dict[str, str] = getattr(found, "problems", {})
        for domain, account_ids in wanted.items():
            ids = sorted(set(found.get(domain, [])))
            for account_id in account_ids:
                if domain in problems:
                    out.unmatched[account_id] = (
                        f"the {crm} lookup of domain {domain} could not be read:"
                        f" {problems[domain]}; retried next run"
                    )
                elif len(ids) == 1:
                    out.record_of[account_id] = ids[0]
                    out.found_by_domain[account_id] = ids[0]
                elif not ids:
                    out.unmatched[account_id] = f"no {crm} record has domain {domain}"
                else:
                    shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
                    out.unmatched[account_id] = (
                        f"{len(ids)} {crm} records have domain {domain} ({shown});"
                        f" set {id_column} on the account to choose one"
                    )
    return out
