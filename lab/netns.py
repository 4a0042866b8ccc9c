"""The lab's endpoint network namespace: where lab processes that back a Service run.

EndpointSlices refuse loopback addresses (127.0.0.0/8), so a process the router (or a pod) must
reach as a Service endpoint cannot listen on 127.0.0.1. It runs instead inside ``seglab-endpoints``,
a network namespace of the lab's own, joined to the host by a veth pair on a private /30:
the host side is ``HOST_ADDRESS``, the namespace side ``ADDRESS`` (the endpoint address). Nothing
else is routed there and the namespace has no route out: its traffic stays between the two ends.
The range does not overlap the kubelet node's pod range (10.244.0.0/24) or the service range.
"""
import subprocess

NAME = "seglab-endpoints"
HOST_VETH = "seglab-ep0"  # the host's end of the pair
NAMESPACE_VETH = "seglab-ep1"  # the namespace's end
PREFIX = 30
HOST_ADDRESS = "172.31.254.1"
ADDRESS = "172.31.254.2"


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def exists():
    """Whether the namespace is there with its end of the pair up and addressed."""
    if NAME not in _ip("netns", "list").stdout.split():
        return False
    shown = _ip("-n", NAME, "-4", "-o", "addr", "show", "dev", NAMESPACE_VETH, check=False)
    return shown.returncode == 0 and f" {ADDRESS}/{int(PREFIX)} " in shown.stdout


def ensure():
    """Create the namespace and the veth pair, or complete what is missing (idempotent)."""
    if NAME not in _ip("netns", "list").stdout.split():
        _ip("netns", "add", NAME)
    _ip("-n", NAME, "link", "set", "lo", "up")
    if _ip("-n", NAME, "link", "show", NAMESPACE_VETH, check=False).returncode != 0:
        _ip("link", "del", HOST_VETH, check=False)  # a host end whose peer is not in the namespace
        _ip("link", "add", HOST_VETH, "type", "veth", "peer", "name", NAMESPACE_VETH, "netns", NAME)
    _ip("addr", "replace", f"{HOST_ADDRESS}/{int(PREFIX)}", "dev", HOST_VETH)
    _ip("link", "set", HOST_VETH, "up")
    _ip("-n", NAME, "addr", "replace", f"{ADDRESS}/{int(PREFIX)}", "dev", NAMESPACE_VETH)
    _ip("-n", NAME, "link", "set", NAMESPACE_VETH, "up")


def remove():
    """Delete the namespace and the pair (both ends go with it); nothing if already gone."""
    _ip("netns", "del", NAME, check=False)
    _ip("link", "del", HOST_VETH, check=False)


def command(argv):
    """``argv`` run inside the namespace. ``ip netns exec`` execs the command in place, so the
    process started is the command itself: its pid is the one to signal."""
    return ["ip", "netns", "exec", NAME, *argv]
