"""nmc's intermediate representation: node kinds, graphs, verifier, text format, interpreters."""

from ir import native  # noqa: F401  (registers the family-native kinds)
from ir.errors import IRError, NmcError, ParseError, VerifyError
from ir.graph import Graph, GraphBuilder, Stage
from ir.nodes import Node, Ref, kind_class, node_kinds

__all__ = [
    "Graph", "GraphBuilder", "IRError", "Node", "NmcError", "ParseError", "Ref", "Stage",
    "VerifyError", "kind_class", "node_kinds",
]
