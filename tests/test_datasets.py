"""Event-file loaders: real bundled files, every format, and every kind of bad input."""

import gzip
import hashlib
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

import dyngraph.datasets as D
from dyngraph.datasets import files as F
from dyngraph.datasets import load_events
from dyngraph.errors import ChecksumError, ConfigError, DataError

PUBLISHED = {  # events, nodes (datasets/PROVENANCE.md, from the original sources)
    "collegemsg": (59_835, 1_899),
    "wikipedia": (157_474, 9_227),
    "bitcoin-otc": (35_592, 5_881),
    "bitcoin-alpha": (24_186, 3_783),
    "sfhh": (70_261, 403),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_bundled_streams_match_published_counts(name):
    s = D.get_events(name)
    events, nodes = PUBLISHED[name]
    assert s.num_events == events and s.num_nodes == nodes
    assert int(s.active_nodes().sum()) == nodes  # contiguous ids, no gaps
    assert (s.t[1:] >= s.t[:-1]).all()


def test_named_loaders_and_aliases():
    uci = D.UCI()
    assert torch.equal(uci.src, D.CollegeMsg().src) and torch.equal(
        D.get_events("UCI").dst, uci.dst)
    first = open(F.data_file("temporal/CollegeMsg.txt")).readline().split()
    assert (uci.src[0].item(), uci.dst[0].item()) == (int(first[0]) - 1, int(first[1]) - 1)
    assert uci.t[0].item() == float(first[2]) and uci.t.dtype == torch.float64
    # loaders hand out copies: mutating one result does not change the next
    uci.src[0] = 5
    assert D.UCI().src[0].item() == int(first[0]) - 1


def test_wikipedia_is_bipartite():
    w = D.Wikipedia()
    assert w.item_offset == 8_227
    assert (w.src < 8_227).all() and (w.dst >= 8_227).all()
    assert torch.equal(w.dst_pool(), torch.arange(8_227, 9_227))


def test_bitcoin_labels_are_ratings_and_sorted():
    otc, alpha = D.BitcoinOTC(), D.BitcoinAlpha()
    for s in (otc, alpha):
        assert s.label.dtype == torch.float32
        assert s.label.min() >= -10 and s.label.max() <= 10 and (s.label != 0).all()
        assert s.original_ids is not None and s.original_ids.numel() == s.num_nodes
    # the Alpha file is not time-ordered: strict loading refuses, the named loader sorts
    with pytest.raises(DataError, match="sort=True"):
        load_events(F.data_file("temporal/soc-sign-bitcoinalpha.csv"))
    raw = np.loadtxt(F.data_file("temporal/soc-sign-bitcoinalpha.csv"), delimiter=",",
                     skiprows=1)
    order = np.argsort(raw[:, 3], kind="stable")
    assert np.array_equal(alpha.original_ids[alpha.src].numpy(), raw[order, 0])
    assert np.array_equal(alpha.label.numpy(), raw[order, 2].astype(np.float32))


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


FORMAT_CASES = {
    "snap": ("edges.txt", "# comment\n5 7 10\n7 9 11\n", "{a} {b} {t}\n"),
    "sociopatterns": ("tij.dat", "time from to\n20 5 7\n40 7 9\n", "{t} {a} {b}\n"),
    "bitcoin": ("soc-sign-bitcoin-x.csv", "from,to,feature,time\n5,7,2,10\n7,9,-3,11\n",
                "{a},{b},{f},{t}\n"),
    "jodie": ("ml_x.csv", ",u,i,ts,label,idx\n0,1,3,0.0,0,1\n1,2,4,5.0,1,2\n",
              "2,{a},{b},{t},0,3\n"),
}


@pytest.mark.parametrize("fmt", sorted(FORMAT_CASES))
def test_formats_parse_and_autodetect(tmp_path, fmt):
    name, text, _ = FORMAT_CASES[fmt]
    p = _write(tmp_path, name, text)
    s = load_events(p)
    assert s.num_events == 2
    if fmt == "jodie":
        assert s.src.tolist() == [0, 1] and s.dst.tolist() == [2, 3] and s.item_offset == 2
        assert s.label.tolist() == [0, 1]
    else:
        assert s.src.tolist() == [0, 1] and s.dst.tolist() == [1, 2]
        assert s.original_ids.tolist() == [5, 7, 9]
    if fmt == "bitcoin":
        assert s.label.tolist() == [2.0, -3.0]
    assert torch.equal(load_events(p, format=fmt).src, s.src)
    gz = tmp_path / (name + ".gz")
    with gzip.open(gz, "wt") as f:
        f.write(text)
    assert torch.equal(load_events(gz, format=fmt).t, s.t)


@pytest.mark.parametrize("fmt", sorted(FORMAT_CASES))
@pytest.mark.parametrize("defect", ["unsorted", "negative", "truncated", "nan", "text"])
def test_bad_rows_raise_with_file_and_line(tmp_path, fmt, defect):
    name, text, row = FORMAT_CASES[fmt]
    if defect == "nan" and fmt not in ("bitcoin",):
        row_text = row.format(a=11, b=12, t=float("nan"), f=1)
    else:
        row_text = row.format(a=-1 if defect == "negative" else 11, b=12,
                              t=1 if defect == "unsorted" else 99,
                              f="nan" if defect == "nan" else 1)
    if defect == "truncated":
        row_text = row_text.rstrip("\n").rsplit(row_text.strip()[-1], 1)[0]
        row_text = row_text[: max(1, len(row_text) // 2)] + "\n"
    if defect == "text":
        row_text = row_text.replace("12", "abc")
    p = _write(tmp_path, name, text + row_text + row.format(a=20, b=21, t=200, f=1))
    line = text.count("\n") + 1
    with pytest.raises(DataError) as e:
        load_events(p, format=fmt)
    words = dict(unsorted="earlier", negative="negative", truncated="truncated", nan="nan",
                 text="not a number")[defect]
    assert f"{p}:{line}:" in str(e.value) and words in str(e.value), str(e.value)


def test_nan_feature_in_jodie_npy_and_msg(tmp_path):
    csv = _write(tmp_path, "ml_y.csv", ",u,i,ts,label,idx\n0,1,3,0.0,0,1\n1,2,4,5.0,1,2\n")
    feat = np.zeros((3, 4), dtype=np.float32)
    feat[1] = [1, 2, 3, 4]
    feat[2] = [5, 6, 7, 8]
    np.save(tmp_path / "ml_y.npy", feat)
    s = load_events(csv)
    assert s.msg_dim == 4 and s.msg[1].tolist() == [5, 6, 7, 8]
    feat[2, 1] = np.nan
    np.save(tmp_path / "ml_y.npy", feat)
    with pytest.raises(DataError, match=r"ml_y.csv:3:.*not finite"):
        load_events(csv)


def test_sort_option_and_num_nodes(tmp_path):
    p = _write(tmp_path, "e.txt", "0 1 5\n1 2 3\n2 0 4\n")
    with pytest.raises(DataError, match=r"e.txt:2: time 3 is earlier"):
        load_events(p)
    s = load_events(p, sort=True, num_nodes=10)
    assert s.t.tolist() == [3, 4, 5] and s.num_nodes == 10
    with pytest.raises(DataError, match="num_nodes"):
        load_events(p, sort=True, num_nodes=2)
    with pytest.raises(ConfigError):
        load_events(p, format="parquet")
    with pytest.raises(DataError, match="no such file"):
        load_events(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="no data"):
        load_events(_write(tmp_path, "empty.txt", "# nothing\n\n"))


# ---------------------------------------------------------------- files, md5, download
def test_data_file_verifies_md5(tmp_path, monkeypatch):
    p = F.data_file("temporal/CollegeMsg.txt")
    assert hashlib.md5(p.read_bytes()).hexdigest() == D.FILES["temporal/CollegeMsg.txt"].md5
    assert F.data_file("transport/SiouxFalls/SiouxFalls_net.tntp").name == \
        "SiouxFalls_net.tntp"
    bad = tmp_path / "data" / "temporal"
    bad.mkdir(parents=True)
    (bad / "CollegeMsg.txt").write_text("1 2 3\n")
    monkeypatch.setenv("DYNGRAPH_DATA", str(tmp_path / "data"))
    with pytest.raises(ChecksumError, match="delete it"):
        F.data_file("temporal/CollegeMsg.txt")
    with pytest.raises(ChecksumError):
        D.CollegeMsg()
    with pytest.raises(DataError, match="not a registered"):
        F.data_file("temporal/unknown.txt")


def _fake_remote(tmp_path, relpath, strip_header):
    """A gzip of the bundled file as the canonical server would serve it."""
    data = F.repo_data_dir().joinpath(relpath).read_bytes()
    if strip_header:
        data = data.split(b"\n", 1)[1]
    remote = tmp_path / "remote" / (relpath.rsplit("/", 1)[1] + ".gz")
    remote.parent.mkdir(parents=True)
    with gzip.open(remote, "wb") as f:
        f.write(data)
    return remote.as_uri()


@pytest.mark.parametrize("relpath, header", [("temporal/CollegeMsg.txt", False),
                                             ("temporal/soc-sign-bitcoinotc.csv", True)])
def test_download_when_missing(tmp_path, monkeypatch, relpath, header):
    info = D.FILES[relpath]
    url = _fake_remote(tmp_path, relpath, strip_header=header)
    monkeypatch.setitem(D.FILES, relpath, replace(info, url=url))
    monkeypatch.setenv("DYNGRAPH_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("DYNGRAPH_CACHE", str(tmp_path / "cache"))
    p = F.data_file(relpath)
    assert p == tmp_path / "cache" / relpath
    assert F.md5sum(p) == info.md5
    assert not list(p.parent.glob("*.part"))
    # second call finds the cached copy (the URL is no longer needed)
    monkeypatch.setitem(D.FILES, relpath, replace(info, url=None))
    assert F.data_file(relpath) == p


def test_download_failures(tmp_path, monkeypatch):
    relpath = "temporal/CollegeMsg.txt"
    info = D.FILES[relpath]
    monkeypatch.setenv("DYNGRAPH_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("DYNGRAPH_CACHE", str(tmp_path / "cache"))
    # corrupt remote: checksum error, nothing left in the cache
    remote = tmp_path / "bad.gz"
    with gzip.open(remote, "wb") as f:
        f.write(b"1 2 3\n")
    monkeypatch.setitem(D.FILES, relpath, replace(info, url=remote.as_uri()))
    with pytest.raises(ChecksumError):
        F.data_file(relpath)
    assert not (tmp_path / "cache" / relpath).exists()
    assert not list((tmp_path / "cache" / "temporal").glob("*"))
    monkeypatch.setitem(D.FILES, relpath, replace(info, url=(tmp_path / "nope.gz").as_uri()))
    with pytest.raises(DataError, match="could not download"):
        F.data_file(relpath)
    # derived file without a URL: say how to supply it
    with pytest.raises(DataError, match="DYNGRAPH_DATA"):
        F.data_file("temporal/ml_wikipedia.txt")


def test_dyngraph_data_dir_override(tmp_path, monkeypatch):
    d = tmp_path / "mydata" / "temporal"
    d.mkdir(parents=True)
    shutil.copy(F.repo_data_dir() / "temporal/SFHH_conference.csv", d)
    monkeypatch.setenv("DYNGRAPH_DATA", str(tmp_path / "mydata"))
    assert F.data_file("temporal/SFHH_conference.csv").parent == d


def test_get_events_path_and_unknown(tmp_path):
    p = _write(tmp_path, "e.txt", "0 1 5\n1 2 6\n")
    assert D.get_events(str(p)).num_events == 2
    with pytest.raises(DataError, match="neither"):
        D.get_events("no-such-dataset")
    assert D.resolve_name("BC_OTC") == "bitcoin-otc" and D.resolve_name("UCI") == "collegemsg"
