"""TNTP parsing: the bundled files, and bad input giving typed errors naming file and line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dyngraph.errors import ChecksumError, DataError
from dyngraph.traffic import TrafficNetwork, datasets_root, load_network, sioux_falls, solve_ue
from dyngraph.traffic.tntp import read_net, read_nodes, read_trips, tntp_url

SF = datasets_root() / "transport" / "SiouxFalls"
NET, TRIPS, NODES = (SF / f"SiouxFalls_{k}.tntp" for k in ("net", "trips", "node"))


def test_bundled_sioux_falls_parses_to_published_dimensions():
    net = sioux_falls()
    assert (net.num_nodes, net.num_links, net.num_zones) == (24, 76, 24)
    assert net.first_thru_node == 1
    assert net.total_demand == pytest.approx(360_600.0)
    assert net.coords.shape == (24, 2)
    # spot-check against the raw text: first link row is "1 2 25900.20064 6 6 0.15 4 ..."
    assert (net.init[0], net.term[0]) == (0, 1)
    assert net.capacity[0] == pytest.approx(25900.20064)
    assert net.free_flow_time[0] == 6.0 and net.b[0] == 0.15 and net.power[0] == 4.0
    assert net.demand[0, 9] == 1300.0  # "Origin 1 ... 10 : 1300.0"
    assert net.edge_index.shape == (2, 76)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _first_link_line(lines: list[str]) -> int:
    end = next(i for i, s in enumerate(lines) if "END OF METADATA" in s)
    return next(i for i in range(end + 1, len(lines))
                if lines[i].strip() and not lines[i].lstrip().startswith("~"))


def test_missing_column_names_file_and_line(tmp_path):
    lines = _lines(NET)
    k = _first_link_line(lines) + 3
    lines[k] = "\t".join(lines[k].split()[:4]) + "\t;"  # drop free-flow time, B, power...
    bad = tmp_path / "Bad_net.tntp"
    bad.write_text("\n".join(lines))
    with pytest.raises(DataError, match=re.escape(f"{bad}:{k + 1}:")) as ei:
        read_net(bad)
    assert "free_flow_time" in str(ei.value) and "missing" in str(ei.value)
    with pytest.raises(DataError, match=re.escape(f"{bad}:{k + 1}:")):
        TrafficNetwork.from_tntp(bad, TRIPS)


def test_negative_capacity_names_file_and_line(tmp_path):
    lines = _lines(NET)
    k = _first_link_line(lines) + 10
    f = lines[k].split("\t")
    cap_col = next(i for i, v in enumerate(f) if v.strip())  # init node
    f[cap_col + 2] = "-5000"
    lines[k] = "\t".join(f)
    bad = tmp_path / "Neg_net.tntp"
    bad.write_text("\n".join(lines))
    with pytest.raises(DataError, match=re.escape(f"{bad}:{k + 1}:")) as ei:
        read_net(bad)
    assert "capacity must be positive" in str(ei.value)


def test_od_pair_without_path_names_trips_file_and_line(tmp_path):
    # Remove both links into node 13 (12->13, 24->13): trips to zone 13 cannot arrive.
    lines = _lines(NET)
    keep = [s for s in lines if not re.match(r"^\s*(12|24)\s+13\s", s)]
    assert len(keep) == len(lines) - 2
    keep = [s.replace("<NUMBER OF LINKS> 76", "<NUMBER OF LINKS> 74") for s in keep]
    net_file = tmp_path / "Cut_net.tntp"
    net_file.write_text("\n".join(keep))
    net = TrafficNetwork.from_tntp(net_file, TRIPS)
    trip_lines = _lines(TRIPS)
    o1 = next(i for i, s in enumerate(trip_lines) if re.match(r"^\s*Origin\s+1\s*$", s))
    line13 = next(i for i in range(o1 + 1, len(trip_lines))
                  if re.search(r"(^|;)\s*13\s*:", trip_lines[i])) + 1
    with pytest.raises(DataError, match=re.escape(f"{TRIPS}:{line13}:")) as ei:
        solve_ue(net, rgap=1e-3)
    assert "1->13" in str(ei.value) and "no path" in str(ei.value)


def test_other_malformed_inputs(tmp_path):
    lines = _lines(NET)
    k = _first_link_line(lines)
    cases = {
        "nan": lines[:k] + [lines[k].replace("25900.20064", "nan")] + lines[k + 1:],
        "node": lines[:k] + [lines[k].replace("\t1\t2\t", "\t1\t99\t", 1)] + lines[k + 1:],
        "truncated": lines[:-5],
        "text": lines[:k] + [lines[k].replace("25900.20064", "abc")] + lines[k + 1:],
    }
    for name, body in cases.items():
        p = tmp_path / f"{name}_net.tntp"
        p.write_text("\n".join(body))
        with pytest.raises(DataError, match=re.escape(str(p))):
            read_net(p)
    tl = _lines(TRIPS)
    j = next(i for i, s in enumerate(tl) if "100.0;" in s)
    bad_trips = tmp_path / "neg_trips.tntp"
    bad_trips.write_text("\n".join(tl[:j] + [tl[j].replace("100.0;", "-100.0;", 1)] + tl[j + 1:]))
    with pytest.raises(DataError, match=re.escape(f"{bad_trips}:{j + 1}:")):
        read_trips(bad_trips)
    with pytest.raises(DataError, match="not found"):
        read_net(tmp_path / "missing_net.tntp")


def test_trips_nodes_and_loader_paths(tmp_path):
    tr = read_trips(TRIPS)
    assert tr.demand.shape == (24, 24) and tr.demand.sum() == pytest.approx(360_600.0)
    assert read_nodes(NODES).shape == (24, 2)
    by_dir = load_network(SF)
    by_file = load_network(NET)
    np.testing.assert_array_equal(by_dir.demand, by_file.demand)
    assert by_file.coords is not None
    assert tntp_url("eastern-massachusetts", "net").endswith(
        "TransportationNetworks/master/Eastern-Massachusetts/EMA_net.tntp")
    with pytest.raises(DataError, match="cache_dir"):
        load_network("eastern-massachusetts")
    with pytest.raises(DataError, match="download=True"):
        load_network("eastern-massachusetts", cache_dir=tmp_path)


def test_checksum_verification(tmp_path, monkeypatch):
    root = tmp_path / "data"
    d = root / "transport" / "SiouxFalls"
    d.mkdir(parents=True)
    for f in SF.glob("*.tntp"):
        (d / f.name).write_bytes(f.read_bytes())
    (root / "MD5SUMS").write_text((datasets_root() / "MD5SUMS").read_text())
    monkeypatch.setenv("DYNGRAPH_DATA", str(root))
    assert sioux_falls().num_links == 76
    (d / "SiouxFalls_trips.tntp").write_text(TRIPS.read_text().replace("1300.0", "1301.0", 1))
    with pytest.raises(ChecksumError):
        sioux_falls()
