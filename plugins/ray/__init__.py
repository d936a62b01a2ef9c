"""The `ray` executor: RunConfigs run on slot actors of an existing Ray cluster (`executor: ray`).

Ray is an optional dependency (`pip install 'modelyzer[ray]'`), imported only when the executor is built.
"""
