"""View-models: what each page computes, one module per page, plus ``common`` and ``charts``.

No Streamlit here (pages hold widgets and layout only) and no TensorFlow at import (a page reruns on
every click): a view imports the engine inside the function that needs it.
"""
