"""A griffe extension for the reference pages: the docstrings that classes finish at import time.

mkdocstrings reads hemcli from its source, without importing it (fast, and no command runs by
accident). The loss classes, though, complete their docstrings when they are made (a class
decorator appends the ``ignore_index`` and ``reduction`` arguments, the shapes and the equations),
so the source holds only a template. For the classes of the modules named here, this extension
imports the module and uses the docstring the class has at run time, with torch's reST roles
(:math:`(N, C)`) turned into Markdown code spans. Listed in mkdocs.yml.
"""
from __future__ import annotations

import importlib
import inspect
import re

import griffe


ROLE = re.compile(r":(?:math|class|func|meth|attr):`([^`]+)`")


class RuntimeDocstrings(griffe.Extension):
    """Replace the static docstring of every class under ``modules`` by its run-time ``__doc__``."""

    def __init__(self, modules: list[str] | None = None) -> None:
        super().__init__()
        self.modules = tuple(modules or ["hemcli.losses"])

    def on_class(self, *, cls: griffe.Class, loader: griffe.GriffeLoader, **kwargs) -> None:
        module = cls.module.path
        if not any(module == name or module.startswith(name + ".") for name in self.modules):
            return
        runtime = getattr(importlib.import_module(module), cls.name, None)
        doc = inspect.getdoc(runtime) if inspect.isclass(runtime) else None
        doc = doc and ROLE.sub(r"`\1`", doc)
        if doc and (cls.docstring is None or doc != inspect.cleandoc(cls.docstring.value)):
            cls.docstring = griffe.Docstring(doc, lineno=cls.docstring.lineno if cls.docstring else None,
                                             parent=cls, parser=loader.docstring_parser,
                                             parser_options=loader.docstring_options)
