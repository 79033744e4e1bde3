"""The double-entry journal: the shop's accounting record, owned by this package.

Nothing edits an entry; corrections are new (reversing) entries. See `journal` for the
storage and the invariants, `rules` for what each event posts, `accounts` for the chart.
"""
