"""A person's search words as an FTS5 query that cannot fail.

FTS5 has a query language (AND, OR, NOT, NEAR, column filters, parentheses, quotes); a
person types words. Each whitespace-separated word becomes an FTS5 string (in double quotes,
inner quotes doubled), so nothing in it is an operator; the strings are ANDed (every word must
occur). A word ending in `*` is a prefix search (`hel*` finds "hello"). A word with no letter or
digit (`--`, `?!`) is dropped, as the index would drop it; text with no word left is no query.
Inside a string the index's own tokenizer splits the word (`don't` is the phrase "don t", as
in the indexed text), so what matches is what a person expects.
"""

from __future__ import annotations


def fts_query(text: str) -> str | None:
    """The FTS5 MATCH expression for `text`, or None when it holds no word to look for."""
    terms = []
    for word in text.split():
        prefix = word.endswith("*")
        word = word.rstrip("*")
        if not any(char.isalnum() for char in word):
            continue
        quoted = '"' + word.replace('"', '""') + '"'
        terms.append(quoted + "*" if prefix else quoted)
    return " ".join(terms) if terms else None
