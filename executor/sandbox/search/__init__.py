"""Sourcegraph's search query language for `repositoriesMatchingQuery`, answered with git
over the sandbox's hosted repositories (no search index).

`tree` (nodes, labels, `Hoist`), `scanner` and `parser` port Sourcegraph's query parser;
`query` its pipeline and validation; `languages` resolves `lang:` with Pygments;
`evaluate` answers a plan. The entry point is `evaluate.search_repositories`.
"""

from executor.sandbox.search.evaluate import RepositoryMatch, search_repositories
from executor.sandbox.search.tree import QueryError, SearchType

__all__ = ["QueryError", "RepositoryMatch", "SearchType", "search_repositories"]
