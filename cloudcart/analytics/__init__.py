"""Analytics: hourly and daily roll-ups kept from events, read by the admin analytics API.

`facts` turns events (and, for `cloudcart analytics verify|rebuild`, the source data) into
facts; `rollups` folds facts into the documents of the `analytics` container, once per fact;
`reports` answers the admin API from those documents.
"""
