"""Sphinx configuration: the user guide (MyST Markdown) and the API reference (autodoc + napoleon).

Built by ``make docs`` with warnings as errors and no network access (so no intersphinx).
"""
import os
import sys

# Document the checkout's dezero, not whichever copy happens to be installed.
sys.path.insert(0, os.path.abspath('..'))

import dezero  # noqa: E402

project = 'DeZero'
author = 'The DeZero developers'
copyright = '2026, The DeZero developers'
release = dezero.__version__
version = release

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
    'myst_parser',
]
source_suffix = {'.md': 'markdown', '.rst': 'restructuredtext'}
exclude_patterns = ['_build']

# Markdown: ``:::`` fences for directives, definition lists, and anchors for ## and ### headings.
myst_enable_extensions = ['colon_fence', 'deflist']
myst_heading_anchors = 3

# The reference follows each module's own order and keeps the signatures as written.
autodoc_member_order = 'bysource'
autodoc_typehints = 'signature'
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = 'pydata_sphinx_theme'
html_title = f'DeZero {release}'
html_theme_options = {
    'navigation_with_keys': False,
    'show_toc_level': 2,
    'footer_start': ['copyright'],
    'footer_end': ['sphinx-version'],
}
html_show_sourcelink = False
