"""The public names the README and the product's contract use are where they say, and stay there."""
import importlib
import inspect
import re
from pathlib import Path

import pytest

import simnet as sn

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()

# the Python API of the contract: top-level names, and what the main objects answer to
TOP_LEVEL = ["Network", "Neuron", "Connection", "Recorder", "open_trace", "Trace", "SimnetError",
             "TopologyError", "ScenarioError", "TraceError", "DivergenceError", "Activation", "SGD", "Momentum",
             "Adam", "Event", "EventBus", "EventLog", "History", "__version__", "sweep", "compare"]
NETWORK = ["add_neuron", "connect", "disconnect", "remove_neuron", "neurons", "connections", "inputs", "outputs",
           "forward", "backward", "zero_grad", "train", "layered", "to_networkx", "from_networkx"]
NEURON = ["name", "role", "activation", "bias", "bias_grad", "value"]
CONNECTION = ["source", "target", "weight", "grad"]
TRACE = ["steps", "events", "snapshot", "network_at"]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_name(name):
    assert getattr(sn, name) is not None
    assert name in sn.__all__


def test_the_errors_derive_from_simnet_error():
    for error in (sn.TopologyError, sn.ScenarioError, sn.TraceError, sn.DivergenceError):
        assert issubclass(error, sn.SimnetError)


def test_the_main_objects_answer_to_their_contract(tmp_path):
    net = sn.Network.layered([2, 2, 1], seed=0)
    for name in NETWORK:
        assert hasattr(net, name), name
    net.forward([[0.0, 1.0]])  # a neuron's `value` is its last forward output
    neuron, connection = net.neurons["h1_0"], net.connections[0]
    for name in NEURON:
        assert hasattr(neuron, name), name
    for name in CONNECTION:
        assert hasattr(connection, name), name
    net.train([[0.0, 1.0]], [[1.0]], steps=1, lr=0.1, recorder=sn.Recorder(tmp_path))
    with sn.open_trace(tmp_path) as trace:
        for name in TRACE:
            assert hasattr(trace, name), name


@pytest.mark.parametrize("module, names", re.findall(r"^from (simnet[\w.]*) import ([\w, ]+)$", README, re.M))
def test_every_import_in_the_readme_resolves(module, names):
    imported = importlib.import_module(module)
    for name in (n.strip() for n in names.split(",")):
        assert hasattr(imported, name), f"{module} has no {name}"


def test_every_sn_name_in_the_readme_exists():
    used = set(re.findall(r"\bsn\.([A-Za-z_]\w*)", README))
    assert used, "the README shows the API as sn.<name>"
    assert not [name for name in used if not hasattr(sn, name)]


def _annotatable(name, value):
    """The functions to check among a class body's `name: value` pairs: public methods and __init__.

    Class and static methods count by the function they wrap; properties and other attributes do not
    (they are not called with arguments).
    """
    if name.startswith("_") and name != "__init__":
        return None
    if isinstance(value, (classmethod, staticmethod)):
        value = value.__func__
    return value if inspect.isfunction(value) else None


def _missing_annotations(qualname, function):
    """What `function`'s signature leaves unannotated: parameters other than self/cls, and the return."""
    signature = inspect.signature(function)
    missing = [f"{qualname}({p.name})" for p in signature.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append(f"{qualname} -> (return)")
    return missing


def test_the_public_api_is_annotated():
    # every function, and every public method (and __init__) an exported class defines in its own body
    missing, checked = [], 0
    for name in sn.__all__:
        value = getattr(sn, name)
        if inspect.isfunction(value):
            missing += _missing_annotations(name, value)
            checked += 1
        elif inspect.isclass(value) and not issubclass(value, BaseException):
            for attr, member in vars(value).items():
                function = _annotatable(attr, member)
                if function is not None:
                    missing += _missing_annotations(f"{name}.{attr}", function)
                    checked += 1
    assert checked > 50, f"only {checked} functions checked: the walk misses the API"
    assert not missing, "not annotated:\n" + "\n".join(missing)


# the command line of the contract: each command and the options it takes
COMMANDS = {
    "run": ["--set", "-o", "--steps", "--seed", "--engine", "--no-gif", "-q"],
    "sweep": ["--grid", "--seeds", "--workers", "--dask", "-o", "--gifs", "--force", "-q"],
    "compare": ["-o", "--format"],
    "serve": ["--port", "--host", "--no-browser"],
    "play": ["--port", "--no-browser", "-o"],
    "replay": ["--gif", "--step", "--html", "-o"],
    "inspect": ["--step", "--neuron", "--kind", "--format", "--sample"],
    "export": ["--format", "-o", "--step"],
    "check": ["--engine", "-q"],
    "list": [],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_the_command_line_takes_the_contracts_options(command, capsys):
    from simnet.cli import main
    assert main([command, "--help"]) == 0
    shown = capsys.readouterr().out
    missing = [option for option in COMMANDS[command] if not re.search(rf"(^|[\s,\[]){re.escape(option)}\b", shown)]
    assert not missing, f"simnet {command} lacks {missing}"
