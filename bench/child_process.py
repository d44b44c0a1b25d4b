"""What the benchmark harnesses' servers share: they die with the harness."""
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """For Popen(preexec_fn=...), in the child before exec: SIGTERM it when the harness dies,
    even by SIGKILL, so that a killed benchmark leaves no server spinning on the cores the next
    run measures (servers sit in their own session, out of reach of the terminal's signals)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
