"""The storage contract, message search and reports of abuse: `SearchStorage`."""

from __future__ import annotations

import pytest

from chatcore.interfaces import Storage
from chatcore.models import Message, Report
from chatcore.testing.storage_contract.base import ContractBase, draft, gather, make_users, store

#: Queries a client may type on purpose or by accident: the syntax of SQLite's FTS5 and of
#: PostgreSQL's tsquery, quotes, NUL, emoji, and 10 KB of text.
HOSTILE_QUERIES = (
    "",
    " ",
    '"',
    '""',
    "'",
    "''",
    "*",
    "hello*",
    "*hello",
    "NEAR(hello world)",
    "hello NEAR world",
    "hello AND OR NOT world",
    "body:hello",
    ":",
    "hello:*",
    "!hello & | <-> ( )",
    "(",
    ")",
    "^hello",
    '"hello',
    "-hello",
    "+hello",
    "\\",
    "%_",
    "\x00",
    "hel\x00lo",
    "héllo wörld ✨ 😀",
    # Letters and digits the databases' tokenizers may split or drop: ², Arabic-Indic digits,
    # a Roman numeral, an ideographic zero, a titlecase digraph, a ligature, double-struck
    # digits, a Hangul filler, a zero-width joiner, a lone combining diaeresis.
    "\u00b2 \u0661\u0662 \u216b \u3007 \u01c5 \ufb01 \U0001d7d8\U0001d7d9 \u115f \u200d \u0308",
    "hello \u115f",
    "x" * 10_000,
    "hello " * 2_000,
)


def report_of(message: Message, reporter_id: str, ts: int, reason: str = "spam") -> Report:
    return Report(
        id=f"report{ts:026d}",
        room_id=message.room_id,
        message_id=message.id,
        reporter_id=reporter_id,
        reason=reason,
        ts=ts,
        message=message,
    )


class SearchContract(ContractBase):
    """Full-text search of messages: `SearchStorage.search_messages`."""

    @pytest.mark.anyio
    async def test_search_finds_every_word_in_the_callers_rooms_only(
        self, storage: Storage
    ) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        shared = await storage.create_group_room(alice.id, "shared", [bob.id], now_ts=1)
        private = await storage.create_group_room(carol.id, "private", [], now_ts=1)
        found_here, other_words, case = await store(
            storage,
            draft(shared, alice, "a", body="The quick brown fox", ts=10),
            draft(shared, bob, "b", body="a lazy dog", ts=11),
            draft(shared, bob, "c", body="QUICK thinking, Brown-bag lunch", ts=12),
        )
        await store(storage, draft(private, carol, "d", body="quick brown secret", ts=13))

        found, more = await storage.search_messages(alice.id, "quick brown")
        assert (found, more) == ([case, found_here], False)  # newest first, case folded
        assert (await storage.search_messages(bob.id, "LAZY"))[0] == [other_words]
        assert (await storage.search_messages(carol.id, "quick"))[0] != []
        assert all(
            m.room_id == private.id for m in (await storage.search_messages(carol.id, "quick"))[0]
        )
        assert await storage.search_messages(alice.id, "secret") == ([], False)
        # A named room the caller is not a member of answers nothing.
        assert await storage.search_messages(alice.id, "quick", room_id=private.id) == ([], False)
        assert (await storage.search_messages(alice.id, "fox", room_id=shared.id))[0] == [
            found_here
        ]
        assert await storage.search_messages("nobody", "quick") == ([], False)

    @pytest.mark.anyio
    async def test_the_last_word_matches_as_a_prefix_and_case_folds(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        hello, cafe = await store(
            storage,
            draft(room, alice, "a", body="hello world", ts=10),
            draft(room, bob, "b", body="Un café crème, s'il vous plaît", ts=11),
        )
        assert (await storage.search_messages(bob.id, "hel"))[0] == [hello]
        assert (await storage.search_messages(bob.id, "world hel"))[0] == [hello]
        # Only the last word is a prefix: "hel world" needs the word "hel".
        assert (await storage.search_messages(bob.id, "hel world"))[0] == []
        assert (await storage.search_messages(alice.id, "CAFÉ CRÈME"))[0] == [cafe]
        assert (await storage.search_messages(alice.id, "cafe creme"))[0] == []  # accents count
        # Punctuation separates words, in the query as in the text.
        assert (await storage.search_messages(alice.id, "S'IL vou"))[0] == [cafe]

    @pytest.mark.anyio
    async def test_edits_and_deletes_keep_the_index_right(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        first, second = await store(
            storage,
            draft(room, alice, "a", body="original wording", ts=10),
            draft(room, alice, "b", body="original too", ts=11),
        )
        edited = await storage.edit_message(room.id, first.id, "rewritten text", now_ts=20)
        assert edited is not None
        assert (await storage.search_messages(bob.id, "wording"))[0] == []
        assert (await storage.search_messages(bob.id, "rewritten"))[0] == [edited]
        assert (await storage.search_messages(bob.id, "original"))[0] == [second]
        again = await storage.edit_message(room.id, first.id, "rewritten once more", now_ts=21)
        assert (await storage.search_messages(bob.id, "rewritten"))[0] == [again]

        assert await storage.delete_message(room.id, second.id, now_ts=30) is not None
        assert await storage.delete_message(room.id, first.id, now_ts=31) is not None
        for query in ("original", "rewritten", "once more"):
            assert await storage.search_messages(bob.id, query) == ([], False)

    @pytest.mark.anyio
    async def test_leaving_a_room_leaves_its_messages_out(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room = await storage.create_group_room(alice.id, "g", [bob.id], now_ts=1)
        (message,) = await store(storage, draft(room, alice, "a", body="farewell party", ts=10))
        assert (await storage.search_messages(bob.id, "party"))[0] == [message]
        await storage.remove_member(room.id, bob.id)
        assert await storage.search_messages(bob.id, "party") == ([], False)
        assert await storage.add_member(room.id, bob.id, now_ts=20) is not None
        assert (await storage.search_messages(bob.id, "party"))[0] == [message]

    @pytest.mark.anyio
    async def test_pages_go_newest_first_without_repeats_or_gaps(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        one = await storage.create_group_room(alice.id, "one", [bob.id], now_ts=1)
        two = await storage.create_group_room(bob.id, "two", [alice.id], now_ts=1)
        # Two rooms, one batch each, equal times across them: (ts, id) orders the ties.
        drafts = [
            draft(room, alice, f"{room.name}{i}", body=f"needle number {i}", ts=100 + i // 3)
            for room in (one, two)
            for i in range(12)
        ]
        stored = await store(storage, *drafts[:12]) + await store(storage, *drafts[12:])
        await store(storage, draft(one, bob, "hay", body="haystack only", ts=200))
        everything = sorted(stored, key=lambda m: (m.ts, m.id), reverse=True)

        pages: list[list[Message]] = []
        before: tuple[int, str] | None = None
        while True:
            page, more = await storage.search_messages(bob.id, "needle", before=before, limit=5)
            pages.append(page)
            if not more:
                break
            before = (page[-1].ts, page[-1].id)
        assert [len(page) for page in pages] == [5, 5, 5, 5, 4]
        assert [m for page in pages for m in page] == everything
        in_one, _ = await storage.search_messages(bob.id, "needle", room_id=one.id, limit=100)
        assert in_one == [m for m in everything if m.room_id == one.id]
        assert await storage.search_messages(bob.id, "needle", limit=0) == ([], False)

    @pytest.mark.anyio
    async def test_hostile_queries_find_or_not_but_never_fail(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        (hello,) = await store(storage, draft(room, alice, "a", body="hello world", ts=10))
        results = await gather(
            *(storage.search_messages(bob.id, query) for query in HOSTILE_QUERIES)
        )
        for query, result in zip(HOSTILE_QUERIES, results, strict=True):
            assert not isinstance(result, BaseException), (query[:40], result)
            found, _ = result
            assert found in ([], [hello]), query[:40]
        by_query = dict(zip(HOSTILE_QUERIES, results, strict=True))
        for query in ("", " ", '"', "*", ":", "(", "\\", "\x00"):
            assert by_query[query] == ([], False), query
        for query in ("hello*", "*hello", "hello:*", "+hello", "-hello", "^hello", '"hello'):
            assert by_query[query][0] == [hello], query
        # Operators of the databases' syntax are words like any other: "near", "and", "body".
        for query in ("NEAR(hello world)", "hello AND OR NOT world", "body:hello"):
            assert by_query[query][0] == [], query
        assert by_query["hello " * 2_000][0] == [hello]


class ReportsContract(ContractBase):
    """Reports of abuse: `SearchStorage.create_report` and the admins' reads and changes."""

    @pytest.mark.anyio
    async def test_a_report_keeps_the_message_as_it_was(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        (message,) = await store(storage, draft(room, alice, "a", body="something rude", ts=10))
        report, created = await storage.create_report(report_of(message, bob.id, 20, "rude"))
        assert created
        assert (report.status, report.resolved_by, report.resolved_ts, report.note) == (
            "open",
            None,
            None,
            None,
        )
        assert await storage.get_report(report.id) == report
        await storage.edit_message(room.id, message.id, "something nice", now_ts=30)
        await storage.delete_message(room.id, message.id, now_ts=31)
        kept = await storage.get_report(report.id)
        assert kept is not None and kept.message == message
        assert kept.message.body == "something rude"
        assert await storage.get_report("no-such-report") is None

    @pytest.mark.anyio
    async def test_one_open_report_per_reporter_and_message(self, storage: Storage) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        room = await storage.create_group_room(alice.id, "g", [bob.id, carol.id], now_ts=1)
        (message,) = await store(storage, draft(room, alice, "a", body="spam spam", ts=10))
        first, created = await storage.create_report(report_of(message, bob.id, 20))
        assert created
        again, created = await storage.create_report(report_of(message, bob.id, 21, "again"))
        assert (again, created) == (first, False)
        other, created = await storage.create_report(report_of(message, carol.id, 22))
        assert created and other.id != first.id
        # Concurrent repeats (another node's included) leave one open report.
        racing = await gather(
            *(storage.create_report(report_of(message, bob.id, 30 + i)) for i in range(4))
        )
        assert all(result == (first, False) for result in racing), racing
        # Once resolved, a new report of the same message opens a new one.
        assert await storage.resolve_report(first.id, alice.id, None, now_ts=40) is not None
        newer, created = await storage.create_report(report_of(message, bob.id, 50))
        assert created and newer.id != first.id

    @pytest.mark.anyio
    async def test_resolving_once_and_listing_by_status(self, storage: Storage) -> None:
        alice, bob = await make_users(storage, "alice", "bob")
        room, _ = await storage.create_direct_room(alice.id, bob.id, now_ts=1)
        stored = await store(
            storage, *(draft(room, alice, f"m{i}", body=f"text {i}", ts=10 + i) for i in range(5))
        )
        reports = [
            (await storage.create_report(report_of(m, bob.id, 100 + i)))[0]
            for i, m in enumerate(stored)
        ]
        resolved = await storage.resolve_report(reports[1].id, alice.id, "warned", now_ts=200)
        assert resolved is not None
        report, changed = resolved
        assert changed
        assert (report.status, report.resolved_by, report.resolved_ts, report.note) == (
            "resolved",
            alice.id,
            200,
            "warned",
        )
        assert report.message == stored[1] and report.reason == reports[1].reason
        # Resolving again changes nothing (the first resolution stays).
        assert await storage.resolve_report(reports[1].id, bob.id, "other", now_ts=300) == (
            report,
            False,
        )
        assert await storage.resolve_report("no-such-report", alice.id, None, now_ts=1) is None

        newest_first = list(reversed(reports))
        assert await storage.list_reports(status="resolved") == ([report], False)
        open_ones = [r for r in newest_first if r.id != report.id]
        assert await storage.list_reports(status="open") == (open_ones, False)
        every = [report if r.id == report.id else r for r in newest_first]
        page, more = await storage.list_reports(limit=2)
        assert (page, more) == (every[:2], True)
        page, more = await storage.list_reports(before=(page[-1].ts, page[-1].id), limit=2)
        assert (page, more) == (every[2:4], True)
        page, more = await storage.list_reports(before=(page[-1].ts, page[-1].id), limit=2)
        assert (page, more) == (every[4:], False)
        assert await storage.list_reports(limit=0) == ([], False)

    @pytest.mark.anyio
    async def test_erasing_a_user_empties_their_words_kept_by_reports(
        self, storage: Storage
    ) -> None:
        alice, bob, carol = await make_users(storage, "alice", "bob", "carol")
        room = await storage.create_group_room(alice.id, "g", [bob.id, carol.id], now_ts=1)
        by_alice, by_carol = await store(
            storage,
            draft(room, alice, "a", body="alice wrote this", ts=10),
            draft(room, carol, "c", body="carol wrote this", ts=11),
        )
        about_alice, _ = await storage.create_report(report_of(by_alice, bob.id, 20, "bob's"))
        by_alice_report, _ = await storage.create_report(
            report_of(by_carol, alice.id, 21, "alice's reason")
        )
        untouched, _ = await storage.create_report(report_of(by_carol, bob.id, 22, "bob's too"))

        assert await storage.erase_user(alice.id, False, now_ts=30) is not None
        emptied = await storage.get_report(about_alice.id)
        assert emptied is not None and emptied.reason == "bob's"
        assert emptied.message == by_alice.model_copy(update={"body": "", "deleted": True})
        filed = await storage.get_report(by_alice_report.id)
        assert filed is not None and (filed.reason, filed.message) == ("", by_carol)
        assert await storage.get_report(untouched.id) == untouched
        assert await storage.erase_user("nobody", False, now_ts=31) is None
