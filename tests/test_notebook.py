"""The tour notebook runs from top to bottom in a real kernel, and shows what it says it shows."""
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TOUR = Path(__file__).resolve().parent.parent / "examples" / "tour.ipynb"


def test_the_tour_executes_without_an_error_and_shows_its_pictures():
    notebook = nbformat.read(TOUR, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(TOUR.parent)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    kinds = [kind for o in outputs for kind in o.get("data", {})]
    assert kinds.count("image/gif") == 2 and kinds.count("image/png") >= 4
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    # the replay page inline, whole: nothing in it is fetched from elsewhere
    assert len(html) == 1 and html[0].startswith("<iframe srcdoc=")
    assert not any(f'{attribute}=&quot;http' in html[0] for attribute in ("src", "href"))
    text = "".join(o.get("text", "") for o in outputs)
    assert "accuracy 75%" in text and "now at step 600" in text and "held-out accuracy" in text
    assert "application/vnd.jupyter.widget-view+json" in kinds  # the progress bar of show=True
    assert "image/svg+xml" in kinds  # and its loss curve

