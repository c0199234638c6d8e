"""web.owner_list: the owner's table has one column per shared.db COLUMNS, headed and labelled alike."""

import re

from shared.db import COLUMNS
from web import owner_list


def test_the_tables_columns_are_the_reviews_columns_in_order():
    assert [c for c, _, _ in owner_list.TABLE_COLUMNS] == list(COLUMNS)
    rows = [(7, "2026-11-25T21:04:47.535Z", "Ann", 4, "fine")]
    for show_ids in (True, False):
        html = owner_list.render(rows, show_ids=show_ids)
        headings = re.findall(r'<th scope="col" class="[^"]+">([^<]+)</th>', html)
        labels = re.findall(r'<td class="[^"]+" data-label="([^"]+)"', html)
        want = owner_list.TABLE_HEADERS if show_ids else owner_list.TABLE_HEADERS[1:]
        assert headings == labels == want, "each cell is labelled with its column's heading (the phone layout)"
    assert owner_list.TABLE_HEADERS == ["Id", "When", "Name", "Rating", "Comment"]
