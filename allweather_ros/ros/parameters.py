"""restore_node's parameters: declared from the core options table (options.OPTIONS), with its
descriptions and rules as descriptors, read-only unless the option may change at run time."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node

from allweather_ros.options import OPTIONS
from allweather_ros.pipeline import PipelineConfig


class ConfigurationError(ValueError):
    """Parameters the node cannot run with; the text names each parameter, value and rule."""


def declare(node: Node) -> dict[str, Any]:
    """Declare every option as a parameter and return the values; a value of the wrong type
    raises ConfigurationError.

    Run-time parameters are declared with dynamic typing, so that a value of the wrong type
    reaches the option's own check and is refused with its rule, not rclpy's bare type error.
    """
    values = {}
    for option in OPTIONS:
        descriptor = ParameterDescriptor(description=option.description,
                                         additional_constraints=option.allowed,
                                         read_only=not option.runtime,
                                         dynamic_typing=option.runtime)
        try:
            value = node.declare_parameter(option.name, option.default, descriptor).value
        except ParameterException as error:
            raise ConfigurationError(f"parameter {option.name!r}: {error}; allowed: "
                                     f"{option.allowed}") from None
        if not option.typed(value):  # dynamically typed: rclpy let any type through
            raise ConfigurationError(f"parameter {option.name!r} = {value!r} has the wrong "
                                     f"type; allowed: {option.allowed}")
        values[option.name] = value
    return values


def pipeline_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The PipelineConfig fields that `values` (some or all parameters) set."""
    fields = {o.pipeline_field: values[o.name] for o in OPTIONS
              if o.pipeline_field and o.name in values}
    if fields.get("cache_dir"):
        fields["cache_dir"] = str(Path(fields["cache_dir"]).expanduser())
    if fields.get("weights"):
        fields["weights"] = str(Path(fields["weights"]).expanduser())
    return fields


def pipeline_config(values: dict[str, Any]) -> PipelineConfig:
    return PipelineConfig(**pipeline_fields(values))
