"""Councils: proposals, signed ballots and sequenced decisions, governing a registry by vote."""
