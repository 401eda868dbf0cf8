"""Words the UI shows for the system's own terms: states, acts, roles, statuses.

Stored values (``pending_approval``, ``execute_partially``, ``amber+strict``)
are identifiers, not prose. Each has an English label here, marked for the
message catalogs, so pages show ``pending approval`` in English and its
translation in French or Chinese. A test checks that every value of every
enumeration the pages show has a label, so a new state cannot appear raw.
"""

from __future__ import annotations

__all__ = ["LABELS", "N_"]


def N_(message: str) -> str:
    """Mark ``message`` for extraction into the catalogs without translating it here."""
    return message


LABELS: dict[str, str] = {
    # Request states.
    "draft": N_("draft"),
    "pending_approval": N_("pending approval"),
    "approved": N_("approved"),
    "sent": N_("sent"),
    "acknowledged": N_("acknowledged"),
    "referred": N_("referred"),
    "under_assessment": N_("under assessment"),
    "clarification_requested": N_("clarification requested"),
    "conditions_proposed": N_("conditions proposed"),
    "conditions_accepted": N_("conditions accepted"),
    "conditions_rejected": N_("conditions rejected"),
    "confidentiality_not_possible": N_("confidentiality not possible"),
    "postponed": N_("postponed"),
    "in_execution": N_("in execution"),
    "delay_notified": N_("delay notified"),
    "preserved": N_("preserved"),
    "extension_requested": N_("extension requested"),
    "extended": N_("extended"),
    "expired": N_("expired"),
    "lifted": N_("lifted"),
    "superseded_by_mla": N_("superseded by an MLA request"),
    "executed_partially": N_("partially executed"),
    "executed": N_("executed"),
    "refused": N_("refused"),
    "impossible": N_("impossible"),
    "withdrawn": N_("withdrawn"),
    "closed": N_("closed"),
    # Acts on requests (the local steps first).
    "create": N_("drafted"),
    "submit": N_("submitted for approval"),
    "approve": N_("approved"),
    "return": N_("returned to draft"),
    "send": N_("sent"),
    "acknowledge": N_("acknowledge"),
    "refer": N_("refer"),
    "assess": N_("assess"),
    "request_clarification": N_("request clarification"),
    "answer_clarification": N_("answer clarification"),
    "propose_conditions": N_("propose conditions"),
    "accept_conditions": N_("accept conditions"),
    "reject_conditions": N_("reject conditions"),
    "notify_confidentiality_not_possible": N_("confidentiality not possible"),
    "proceed": N_("proceed"),
    "postpone": N_("postpone"),
    "start_execution": N_("start execution"),
    "notify_delay": N_("notify a delay"),
    "preserve": N_("preserve"),
    "disclose_path": N_("disclose the traffic path"),
    "request_extension": N_("request an extension"),
    "extend": N_("extend"),
    "decline_extension": N_("decline the extension"),
    "expire": N_("expire"),
    "lift": N_("lift"),
    "supersede": N_("supersede"),
    "execute_partially": N_("execute partially"),
    "execute": N_("execute"),
    "refuse": N_("refuse"),
    "declare_impossible": N_("declare impossible"),
    "withdraw": N_("withdraw"),
    "close": N_("close"),
    # Elements of acts.
    "answers": N_("answers"),
    "conditions": N_("conditions"),
    "evidence": N_("evidence file"),
    "grounds": N_("grounds"),
    "mla_request": N_("MLA request"),
    "not_executed": N_("what was not executed"),
    "notes": N_("notes"),
    "preserved_at": N_("preserved at"),
    "providers": N_("service providers"),
    "questions": N_("questions"),
    "reasons": N_("reasons"),
    "reference": N_("reference"),
    "referred_to": N_("referred to"),
    "summary": N_("summary"),
    "until": N_("until"),
    # Sides.
    "requester": N_("requesting party"),
    "requested": N_("requested party"),
    # Deadlines.
    "overdue": N_("overdue"),
    "due-soon": N_("due soon"),
    "pending": N_("pending"),
    # Transport and evidence.
    "delivered": N_("delivered"),
    "failed": N_("failed"),
    "received": N_("received"),
    "packaged": N_("packaged"),
    "announced": N_("announced"),
    "verified": N_("verified"),
    "rejected": N_("rejected"),
    "collected": N_("collected"),
    "opened": N_("opened"),
    # Roles.
    "officer": N_("officer"),
    "supervisor": N_("supervisor"),
    "analyst": N_("analyst"),
    "delegate": N_("delegate"),
    "administrator": N_("administrator"),
    # Audit outcomes.
    "done": N_("done"),
    # Agreements.
    "proposed": N_("proposed"),
    "signed": N_("signed"),
    "in_force": N_("in force"),
    "suspended": N_("suspended"),
    "superseded": N_("superseded"),
    "terminated": N_("terminated"),
    # Council stages and ballots.
    "submitted": N_("submitted"),
    "discussion": N_("discussion"),
    "voting": N_("voting"),
    "last-call": N_("last call"),
    "adopted": N_("adopted"),
    "appealed": N_("appealed"),
    "yes": N_("yes"),
    "no": N_("no"),
    "abstain": N_("abstain"),
    # TLP levels.
    "clear": N_("TLP:CLEAR"),
    "green": N_("TLP:GREEN"),
    "amber": N_("TLP:AMBER"),
    "amber+strict": N_("TLP:AMBER+STRICT"),
    "red": N_("TLP:RED"),
    # Kinds of participant (node cards).
    "central-authority": N_("central authority"),
    "point-of-contact-24-7": N_("24/7 point of contact"),
    "law-enforcement": N_("law-enforcement unit"),
    "cert": N_("CERT"),
    "regulator": N_("regulator"),
    "service-provider": N_("service provider"),
    "registry": N_("registry"),
    "professional-organisation": N_("professional organisation"),
    "academic-organisation": N_("academic organisation"),
    "international-organisation": N_("international organisation"),
    # Number resources: kinds, delegation statuses, proposal effects.
    "ipv4": N_("IPv4"),
    "ipv6": N_("IPv6"),
    "asn": N_("AS numbers"),
    "allocated": N_("allocated"),
    "assigned": N_("assigned"),
    "reserved": N_("reserved"),
    "block": N_("block"),
    "holder": N_("holder"),
    "handle": N_("handle"),
    "name": N_("name"),
    "country": N_("country"),
    "status": N_("status"),
    # Proposal kinds and majorities.
    "policy": N_("policy"),
    "allocation": N_("allocation"),
    "rules": N_("rules"),
    "consultation": N_("consultation"),
    "simple": N_("simple majority"),
    "two-thirds": N_("two-thirds majority"),
    "unanimity": N_("unanimity"),
    # Log alarms.
    "fork": N_("fork"),
    "audit": N_("audit"),
}
