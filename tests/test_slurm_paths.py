"""slurm/local-cluster.sh derives its state dir and ports from the checkout (GitHub issue 12): two
checkouts on one machine never share daemons or state. `paths` starts nothing, so no cluster is
needed (not marked slurm)."""
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict

SCRIPT = Path(__file__).resolve().parents[1] / "slurm" / "local-cluster.sh"
PORT_KEYS = ("SLURMCTLD_PORT", "SLURMD_PORT", "SLURMDBD_PORT", "MARIADB_PORT")


def checkout(root: Path) -> Path:
    """A stand-in checkout: just slurm/local-cluster.sh at root."""
    (root / "slurm").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "slurm" / "local-cluster.sh")
    return root


def paths_of(root: Path, command: str = "paths") -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KANSCALE_SLURM_DIR", "KANSCALE_SLURM_PORT_BASE", "SLURM_CONF")}
    out = subprocess.run(["bash", str(root / "slurm" / "local-cluster.sh"), command], env=env,
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_two_checkouts_get_their_own_state_dir_and_ports(tmp_path):
    a, b = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    paths_a, paths_b = paths_of(a), paths_of(b)
    assert paths_a["STATE_DIR"] == str(a.resolve() / ".slurm-state")  # git-ignored
    assert paths_b["STATE_DIR"] == str(b.resolve() / ".slurm-state")
    assert paths_a["SLURM_CONF"] == f"{paths_a['STATE_DIR']}/etc/slurm.conf"
    assert paths_a["MUNGE_SOCKET"].startswith(paths_a["STATE_DIR"] + "/")
    assert paths_a["MARIADB_SOCKET"].startswith(paths_a["STATE_DIR"] + "/")
    ports_a = [int(paths_a[k]) for k in PORT_KEYS]
    ports_b = [int(paths_b[k]) for k in PORT_KEYS]
    assert set(ports_a).isdisjoint(ports_b)
    for ports in (ports_a, ports_b):
        assert ports == list(range(ports[0], ports[0] + 4))
        assert 20000 <= ports[0] and ports[-1] <= 31999  # below Linux's ephemeral range
    assert paths_of(a) == paths_a  # the same checkout: the same dir and ports
    # `paths` and `env` start nothing and write nothing
    assert not (a / ".slurm-state").exists()
    assert paths_of(a, "env") == {"export SLURM_CONF": paths_a["SLURM_CONF"]}


def test_long_checkout_path_keeps_socket_paths_short(tmp_path):
    deep = checkout(tmp_path / ("x" * 60) / ("y" * 60))
    paths = paths_of(deep)
    assert paths["STATE_DIR"].startswith(f"/tmp/kanscale-slurm-{os.getuid()}-")
    assert len(paths["MUNGE_SOCKET"]) < 108 and len(paths["MARIADB_SOCKET"]) < 108
    other = checkout(tmp_path / ("x" * 60) / ("z" * 60))
    assert paths_of(other)["STATE_DIR"] != paths["STATE_DIR"]


def test_knobs_override_the_derived_values(tmp_path):
    root = checkout(tmp_path / "c")
    env = {**os.environ, "KANSCALE_SLURM_DIR": str(tmp_path / "state"),
           "KANSCALE_SLURM_PORT_BASE": "26817"}
    out = subprocess.run(["bash", str(root / "slurm" / "local-cluster.sh"), "paths"], env=env,
                         capture_output=True, text=True, check=True).stdout
    paths = dict(line.split("=", 1) for line in out.splitlines())
    assert paths["STATE_DIR"] == str(tmp_path / "state")
    assert [paths[k] for k in PORT_KEYS] == ["26817", "26818", "26819", "26820"]
