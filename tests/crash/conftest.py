"""tests/crash/conftest.py — the crash tests reuse the end-to-end fixtures (Tern, make_tern,
the private-network-namespace guard) from tests/e2e/conftest.py, loaded under its own module
name so that both suites can run in one pytest session."""
import importlib.util
import pathlib
import sys

_path = pathlib.Path(__file__).resolve().parents[1] / "e2e" / "conftest.py"
_spec = importlib.util.spec_from_file_location("tern_e2e_conftest", _path)
_mod = importlib.util.module_from_spec(_spec)
sys.modules["tern_e2e_conftest"] = _mod
_spec.loader.exec_module(_mod)
globals().update({k: v for k, v in vars(_mod).items() if not k.startswith("__")})
