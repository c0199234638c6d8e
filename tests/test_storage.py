"""shared/storage.py: which file system a folder is on, from real mountinfo text, and what is chosen."""

import os
from pathlib import Path

import pytest

from shared.config import ConfigError, load_config
from shared.storage import (LOCAL, NETWORK, UNKNOWN, StorageRefused, check_data_dir, classify, container_plan,
                            mount_of, parse_mountinfo, read_mounts)

# A Space with a bucket mounted as a volume (hf-mount, FUSE), in a container on overlay.
SPACE = """\
1020 900 0:310 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A:/var/lib/docker/overlay2/l/B,upperdir=/x/diff,workdir=/x/work
1021 1020 0:312 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1022 1020 0:313 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1030 1020 0:320 / /data rw,nosuid,nodev,relatime shared:510 - fuse.hf-mount hf-mount rw,user_id=0,group_id=0,allow_other
1031 1020 254:1 /docker/volumes/logs /home/user/logs rw,relatime - ext4 /dev/vda1 rw
"""
# rclone over a local folder, NFS, SMB, 9p, a stacked mount, an escaped space, and a local disk inside a FUSE mount.
OTHERS = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
40 27 0:50 / /mnt/rclone rw,nosuid,nodev,relatime - fuse.rclone backing: rw,user_id=0,group_id=0
41 27 0:51 / /mnt/nfs rw,relatime - nfs4 server:/export rw,vers=4.2
42 27 0:52 / /mnt/smb rw,relatime - cifs //srv/share rw,vers=3.1.1
43 27 0:53 / /mnt/host rw,relatime - 9p hostshare rw,trans=virtio
44 27 0:54 / /mnt/stack rw,relatime - ext4 /dev/vdb rw
45 44 0:55 / /mnt/stack rw,relatime - fuse.sshfs me@host:/x rw
46 27 0:56 / /mnt/my\\040disk rw,relatime - xfs /dev/vdc rw
47 40 254:3 / /mnt/rclone/inner rw,relatime - btrfs /dev/vdd rw
48 27 0:57 / /mnt/ntfs rw,relatime - fuseblk /dev/sdb1 rw
"""


def test_file_system_kinds():
    for fstype in ("ext4", "xfs", "btrfs", "overlay", "tmpfs", "zfs"):
        assert classify(fstype) == LOCAL, fstype
    for fstype in ("fuse.hf-mount", "fuse.rclone", "fuse.sshfs", "fuseblk", "fuse", "nfs", "nfs4", "cifs", "smb3",
                   "9p", "virtiofs", "ceph"):
        assert classify(fstype) == NETWORK, fstype
    assert classify("proc") == UNKNOWN


def test_a_space_with_a_bucket_at_data():
    mounts = parse_mountinfo(SPACE)
    assert len(mounts) == 5
    assert mount_of("/data", mounts).fstype == "fuse.hf-mount"
    assert mount_of("/data/feedback-backups/reviews-1.json", mounts).kind == NETWORK
    assert mount_of("/home/user/data/reviews.db", mounts).fstype == "overlay"  # the container's own disk
    assert mount_of("/home/user/logs/x.log", mounts).fstype == "ext4"
    assert mount_of("/database", mounts).fstype == "overlay"  # a prefix of the name, not of the path


def test_longest_prefix_last_mount_and_escapes():
    mounts = parse_mountinfo(OTHERS)
    assert mount_of("/mnt/rclone/x.db", mounts).kind == NETWORK
    assert mount_of("/mnt/rclone/inner/x.db", mounts).fstype == "btrfs"  # a disk mounted inside the FUSE mount
    assert mount_of("/mnt/nfs/a", mounts).kind == NETWORK
    assert mount_of("/mnt/smb", mounts).kind == NETWORK
    assert mount_of("/mnt/host/a", mounts).kind == NETWORK
    assert mount_of("/mnt/stack/a", mounts).fstype == "fuse.sshfs"  # mounted over the ext4: the later one hides it
    assert mount_of("/mnt/my disk/a", mounts).fstype == "xfs"
    assert mount_of("/mnt/ntfs/a", mounts).kind == NETWORK
    assert mount_of("/srv/a", mounts).fstype == "ext4"


def test_this_machines_mountinfo(tmp_path):
    text = Path("/proc/self/mountinfo").read_text()
    mounts = read_mounts()
    assert len(mounts) == len(text.splitlines()) > 0
    root = mount_of("/", mounts)
    assert root is not None and root.point == "/"
    assert mount_of(tmp_path, mounts).kind == LOCAL  # the tests' data folders
    assert mount_of("/proc/self", mounts).fstype == "proc"
    # Every mount point is the mount of itself (the longest prefix), whatever its escapes.
    for mount in mounts:
        if os.path.realpath(mount.point) == mount.point:
            assert mount_of(mount.point, mounts).point == mount.point


def test_the_live_database_is_refused_on_a_fuse_folder_unless_overridden():
    mounts = parse_mountinfo(SPACE)
    with pytest.raises(StorageRefused) as refused:
        check_data_dir(Path("/data/feedback"), allow_network=False, mounts=mounts)
    message = str(refused.value)
    assert "FEEDBACK_DATA_DIR='/data/feedback'" in message and "fuse.hf-mount" in message
    assert "FEEDBACK_ALLOW_NETWORK_DATA_DIR=true" in message and "BACKUP_MOUNT_DIR" in message
    assert check_data_dir(Path("/data/feedback"), allow_network=True, mounts=mounts).kind == NETWORK
    assert check_data_dir(Path("/home/user/data"), allow_network=False, mounts=mounts).kind == LOCAL


def test_the_containers_plan(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    home = str(tmp_path / "home")
    fuse = parse_mountinfo(f"1 0 0:1 / / rw - ext4 /dev/vda rw\n2 1 0:2 / {data} rw - fuse.hf-mount hf-mount rw\n")
    plan = container_plan({"HOME": home}, fuse, data_mount=str(data))
    assert plan.data_dir == f"{home}/data" and not plan.persistent
    assert plan.mount_backup_dir == f"{data}/feedback-backups" and os.path.isdir(plan.mount_backup_dir)
    assert "fuse.hf-mount" in plan.reason and "cannot hold the live database" in plan.reason
    assert plan.exports()["BACKUP_MOUNT_DIR"] == f"{data}/feedback-backups"

    disk = parse_mountinfo(f"1 0 0:1 / / rw - overlay overlay rw\n2 1 0:2 / {data} rw - ext4 /dev/vdb rw\n")
    plan = container_plan({"HOME": home}, disk, data_mount=str(data))
    assert plan.data_dir == f"{data}/feedback" and plan.persistent and plan.mount_backup_dir is None

    plan = container_plan({"HOME": home}, disk, data_mount=str(tmp_path / "absent"))
    assert plan.data_dir == f"{home}/data" and not plan.persistent and "no " in plan.reason

    with pytest.raises(StorageRefused):
        container_plan({"HOME": home, "FEEDBACK_DATA_DIR": f"{data}/x"}, fuse, data_mount=str(data))
    allowed = container_plan({"HOME": home, "FEEDBACK_DATA_DIR": f"{data}/x", "FEEDBACK_ALLOW_NETWORK_DATA_DIR": "1"},
                             fuse, data_mount=str(data))
    assert allowed.data_dir == f"{data}/x"


def test_backup_mount_settings(tmp_path):
    config = load_config({"FEEDBACK_DATA_DIR": str(tmp_path / "d"), "BACKUP_MOUNT_DIR": str(tmp_path / "m"),
                          "FEEDBACK_DATA_PERSISTENT": "false"})
    assert config.backup_mount_dir == tmp_path / "m" and config.backup_mount_interval_seconds == 10.0
    assert not config.reviews_at_risk  # the mount keeps them
    for name, value in (("BACKUP_MOUNT_DIR", "relative/path"), ("BACKUP_MOUNT_INTERVAL_SECONDS", "0"),
                        ("FEEDBACK_ALLOW_NETWORK_DATA_DIR", "maybe")):
        with pytest.raises(ConfigError, match=name):
            load_config({"FEEDBACK_DATA_DIR": str(tmp_path / "d"), name: value})


def test_the_worker_and_scripts_start_refuse_a_data_folder_on_a_real_fuse_mount(tmp_path):
    import shutil
    import subprocess
    import sys

    from tests.container_images import FuseMount

    if shutil.which("rclone") is None or shutil.which("fusermount") is None:
        pytest.skip("needs rclone and fuse3 (bash scripts/test installs them)")
    root = Path(__file__).resolve().parent.parent
    with FuseMount(tmp_path / "bucket", tmp_path / "mnt") as fuse:
        env = {**os.environ, "FEEDBACK_DATA_DIR": str(fuse.mountpoint / "data"), "PYTHONPATH": str(root)}
        env.pop("HF_DATASET_REPO", None)
        worker = subprocess.run([sys.executable, "-m", "worker", "run"], cwd=root, env=env, capture_output=True,
                                text=True, timeout=60)
        assert worker.returncode == 2, worker.stdout + worker.stderr
        said = worker.stdout + worker.stderr
        assert "refusing to start" in said and "fuse.rclone" in said and "FEEDBACK_ALLOW_NETWORK_DATA_DIR" in said
        assert not (fuse.mountpoint / "data" / "reviews.db").exists()  # nothing was opened there
        check = subprocess.run([sys.executable, "-m", "shared.storage", "check"], cwd=root, env=env,
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 2 and "fuse.rclone" in check.stderr
        env["FEEDBACK_ALLOW_NETWORK_DATA_DIR"] = "true"
        allowed = subprocess.run([sys.executable, "-m", "shared.storage", "check"], cwd=root, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert allowed.returncode == 0, allowed.stderr
