"""The web dashboard (`modelyzer ui`): a second frontend on the same Profile/Store API as the CLI.

`command` (the click command and its safe defaults), `snapshot` (read-only snapshots of the results DB),
`views` (tables and the compare view as values), `figures` (Plotly figures), `live` (progress, ETA, agents),
`app` (the Starlette app: pages, data, downloads, server-sent events); `templates/` and `static/` hold the pages.
"""
