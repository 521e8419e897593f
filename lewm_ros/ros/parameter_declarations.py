"""Declare the parameters of lewm_ros.control.node_params.SPECS on a node and read them back (ROS glue)."""
from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from lewm_ros.control.node_params import SPECS

_ROS_TYPES = {
    'bool': ParameterType.PARAMETER_BOOL, 'integer': ParameterType.PARAMETER_INTEGER,
    'double': ParameterType.PARAMETER_DOUBLE, 'string': ParameterType.PARAMETER_STRING,
    'integer_array': ParameterType.PARAMETER_INTEGER_ARRAY,
    'double_array': ParameterType.PARAMETER_DOUBLE_ARRAY,
    'string_array': ParameterType.PARAMETER_STRING_ARRAY,
}

_PARAM_TYPES = {'integer_array': Parameter.Type.INTEGER_ARRAY, 'double_array': Parameter.Type.DOUBLE_ARRAY,
                'string_array': Parameter.Type.STRING_ARRAY}


def declare_all(node: Node) -> None:
    """Declare every parameter with its type, default and a description (unit, static/dynamic)."""
    for spec in SPECS:
        unit = f' [{spec.unit}]' if spec.unit else ''
        kind = 'dynamic' if spec.dynamic else 'static (read at configure)'
        descriptor = ParameterDescriptor(name=spec.name, type=_ROS_TYPES[spec.type],
                                         description=f'{spec.description}{unit} ({kind})')
        if spec.type.endswith('_array') and not spec.default:
            # an empty list would be typed as a byte array: declare the type, then set the default
            ros_type = _PARAM_TYPES[spec.type]
            node.declare_parameter(spec.name, ros_type, descriptor)
            try:
                node.get_parameter(spec.name)
            except ParameterUninitializedException:
                node.set_parameters([Parameter(spec.name, ros_type, [])])
        else:
            node.declare_parameter(spec.name, spec.default, descriptor)


def read_all(node: Node) -> dict[str, Any]:
    """name -> current value of every declared parameter of SPECS."""
    return {spec.name: _plain(node.get_parameter(spec.name).value) for spec in SPECS}


def _plain(value: Any) -> Any:
    """Parameter arrays come back as array.array / numpy arrays: make them lists."""
    return value if isinstance(value, (bool, int, float, str)) else list(value)
