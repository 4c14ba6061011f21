#!/usr/bin/python3
"""Runs a command in an unpacked image root filesystem as the image's config
says a container runtime would: Entrypoint + (arguments or Cmd), Env,
WorkingDir, User (uid:gid, no supplementary groups), HOME from the image's
/etc/passwd. The caller sets up the mounts and namespaces (image_test.sh).

  run_in_rootfs.py IMAGE_CONFIG.json ROOTFS [ARG...]
  run_in_rootfs.py IMAGE_CONFIG.json ROOTFS --healthcheck   # the HEALTHCHECK's command,
                                                            # killed after its Timeout
  run_in_rootfs.py IMAGE_CONFIG.json ROOTFS --env NAME=VALUE ... # plus an environment
      variable the orchestrator sets (e.g. the Helm chart's), before the rest
"""
import json
import os
import signal
import sys

config_path, root, *args = sys.argv[1:]
with open(config_path) as f:
    cfg = json.load(f)["config"]
extra_env = {}
while args[:1] == ["--env"]:
    name, _, value = args[1].partition("=")
    extra_env[name] = value
    args = args[2:]

if args[:1] == ["--healthcheck"]:
    hc = cfg["Healthcheck"]
    if hc["Test"][0] != "CMD":
        sys.exit("run_in_rootfs: only exec-form (CMD) health checks are supported")
    argv = hc["Test"][1:]
    timeout = max(1, int(hc.get("Timeout", 30 * 10**9) // 10**9))
else:
    argv = cfg.get("Entrypoint", []) + (args or cfg.get("Cmd", []))
    timeout = 0

env = dict(e.split("=", 1) for e in cfg.get("Env", []))
env.update(extra_env)
user, _, group = cfg.get("User", "0").partition(":")
uid = int(user)
gid = int(group) if group else None
home = "/"
with open(os.path.join(root, "etc/passwd")) as f:
    for line in f:
        fields = line.rstrip("\n").split(":")
        if len(fields) >= 6 and int(fields[2]) == uid:
            home = fields[5]
            gid = int(fields[3]) if gid is None else gid
env.setdefault("HOME", home)

os.chroot(root)
os.chdir(cfg.get("WorkingDir") or "/")
os.setgroups([])
os.setgid(gid if gid is not None else 0)
os.setuid(uid)
exe = argv[0]
if "/" not in exe:
    for d in env.get("PATH", "/usr/bin:/bin").split(":"):
        if os.access(os.path.join(d, exe), os.X_OK):
            exe = os.path.join(d, exe)
            break
if timeout:
    signal.alarm(timeout)  # survives execve: SIGALRM ends the check like the runtime's timeout
os.execve(exe, argv, env)
