"""Declare the parameters of lewm_ros.control.param_specs.SPECS on a node (type, default, description,
range) and read them back (ROS glue)."""
from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import (InvalidParameterTypeException, InvalidParameterValueException,
                              ParameterUninitializedException)
from rclpy.node import Node
from rclpy.parameter import Parameter

from lewm_ros.control.param_specs import SPECS, ParamSpec

_ROS_TYPES = {
    'bool': ParameterType.PARAMETER_BOOL, 'integer': ParameterType.PARAMETER_INTEGER,
    'double': ParameterType.PARAMETER_DOUBLE, 'string': ParameterType.PARAMETER_STRING,
    'integer_array': ParameterType.PARAMETER_INTEGER_ARRAY,
    'double_array': ParameterType.PARAMETER_DOUBLE_ARRAY,
    'string_array': ParameterType.PARAMETER_STRING_ARRAY,
}

_PARAM_TYPES = {'integer_array': Parameter.Type.INTEGER_ARRAY, 'double_array': Parameter.Type.DOUBLE_ARRAY,
                'string_array': Parameter.Type.STRING_ARRAY}


def declare_all(node: Node) -> dict[str, str]:
    """Declare every parameter with its type, default, range and a description (unit,
    static/dynamic). An override (params file, -p, launch) of the wrong type or out of range is
    not applied: the parameter keeps its default and the returned map says why (name -> reason),
    so configure can fail with the cause instead of the node dying at construction."""
    rejected = {}
    for spec in SPECS:
        unit = f' [{spec.unit}]' if spec.unit else ''
        kind = 'dynamic' if spec.dynamic else 'static (read at configure)'
        descriptor = ParameterDescriptor(name=spec.name, type=_ROS_TYPES[spec.type],
                                         description=f'{spec.description}{unit} ({kind})')
        _add_range(descriptor, spec)
        try:
            _declare(node, spec, descriptor, ignore_override=False)
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            rejected[spec.name] = str(exc)
            _declare(node, spec, descriptor, ignore_override=True)
    return rejected


def _declare(node: Node, spec: ParamSpec, descriptor: ParameterDescriptor, ignore_override: bool) -> None:
    if spec.type.endswith('_array') and not spec.default:
        # an empty list would be typed as a byte array: declare the type, then set the default
        ros_type = _PARAM_TYPES[spec.type]
        node.declare_parameter(spec.name, ros_type, descriptor, ignore_override=ignore_override)
        try:
            node.get_parameter(spec.name)
        except ParameterUninitializedException:
            node.set_parameters([Parameter(spec.name, ros_type, [])])
    else:
        node.declare_parameter(spec.name, spec.default, descriptor, ignore_override=ignore_override)


def _add_range(descriptor: ParameterDescriptor, spec: ParamSpec) -> None:
    """The spec's limits as the descriptor's range (integers: IntegerRange; doubles, and double
    arrays element by element in lewm_ros.control.node_params: FloatingPointRange)."""
    if spec.limits is None:
        return
    low, high = spec.limits
    if spec.type.startswith('integer'):
        descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    else:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]


def read_all(node: Node) -> dict[str, Any]:
    """name -> current value of every declared parameter of SPECS."""
    return {spec.name: _plain(node.get_parameter(spec.name).value) for spec in SPECS}


def _plain(value: Any) -> Any:
    """Parameter arrays come back as array.array / numpy arrays: make them lists."""
    return value if isinstance(value, (bool, int, float, str)) else list(value)
