"""lewm_ros.jsonio: atomic JSON writes, reads whose errors name the file."""
import pytest

from lewm_ros.jsonio import read_json, write_json


class Custom(Exception):
    pass


def test_round_trip_leaves_no_temporary_file(tmp_path):
    path = write_json(tmp_path / 'a.json', {'x': [1, 2]})
    assert read_json(path, 'thing', lambda d: d['x']) == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.json']


@pytest.mark.parametrize('content', [None, '{not json', '{"y": 1}'])
def test_bad_file_raises_naming_what_and_path(tmp_path, content):
    path = tmp_path / 'b.json'
    if content is not None:
        path.write_text(content)
    with pytest.raises(Custom, match=rf'cannot read thing {path}'):
        read_json(path, 'thing', lambda d: d['x'], Custom)
