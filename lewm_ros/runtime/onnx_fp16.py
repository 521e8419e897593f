"""FP16 variant of an ONNX graph: the precision lives in the graph, for strongly typed TensorRT.

TensorRT 11 builds strongly typed networks only (no ``BuilderFlag.FP16``, no per-layer
precision): every tensor has the type the ONNX file gives it. :func:`convert_to_fp16` rewrites
an FP32 graph so that it computes in FP16 while its interface stays the same:

- graph inputs and outputs stay float32 (a Cast after each input, before each output), so a
  backend feeds and reads the same tensors whatever the precision;
- float32 initializers, ``Constant`` / ``ConstantOfShape`` values and ``Cast(to=FLOAT)`` become
  float16 (values beyond the float16 range are clipped to +-65504 with a warning; +-inf stays);
- the ops in :data:`KEEP_FP32_OPS` (normalisations, reductions, powers: what the TensorRT 10
  builder path used to pin to FP32) compute in float32 between casts, with their own
  initializers (LayerNorm scale and bias) kept float32; so does every op downstream of them
  whose float data all comes from float32 ops, except the :data:`FP16_OPS` (matrix products):
  the costs after their sums of squares stay float32, so candidates closer than float16's
  resolution (~1e-3 relative) still rank apart.

Casts are inserted once per (tensor, type) and before their first consumer, so node order stays
topological. The result passes ``onnx.checker`` (full check, strict shape inference).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

_LOG = logging.getLogger(__name__)

#: Ops computed in float32 inside an FP16 graph: normalisation statistics and sums of squares
#: lose too much in float16 (TensorRT's own guidance pins the same layers).
KEEP_FP32_OPS = frozenset({'LayerNormalization', 'BatchNormalization', 'ReduceSum', 'ReduceMean',
                           'ReduceSumSquare', 'ReduceL2', 'Pow'})
#: Ops that always compute in float16 (the bulk of the work), even on float32-region inputs.
FP16_OPS = frozenset({'MatMul', 'Gemm', 'Conv', 'ConvTranspose', 'Einsum'})
FP16_MAX = float(np.finfo(np.float16).max)


def _to_fp16_tensor(tensor: Any, what: str) -> None:
    """Rewrite a float32 TensorProto in place as float16 (clipped to the float16 range)."""
    from onnx import TensorProto, numpy_helper
    values = numpy_helper.to_array(tensor)
    beyond = np.isfinite(values) & (np.abs(values) > FP16_MAX)  # +-inf (attention masks) stay inf
    if beyond.any():
        _LOG.warning('%s: %d float32 value(s) beyond the float16 range clipped to +-%g', what, int(beyond.sum()),
                     FP16_MAX)
    values = np.where(beyond, np.sign(values) * FP16_MAX, values)
    converted = numpy_helper.from_array(values.astype(np.float16), tensor.name)
    tensor.Clear()
    tensor.CopyFrom(converted)
    assert tensor.data_type == TensorProto.FLOAT16


def _float_tensors(model: Any) -> set[str]:
    """Names of every float32 tensor of the graph (from strict shape inference)."""
    import onnx
    from onnx import TensorProto
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = inferred.graph
    names = {v.name for v in (*graph.input, *graph.output, *graph.value_info)
             if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    return names | {t.name for t in graph.initializer if t.data_type == TensorProto.FLOAT}


def convert_to_fp16(model: Any) -> Any:
    """An FP16-compute copy of the float32 ``onnx.ModelProto`` ``model`` (loaded with its
    external data); inputs and outputs keep their float32 type, names and shapes."""
    import onnx
    from onnx import TensorProto, helper
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    if any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for node in graph.node for attr in node.attribute):
        raise ValueError('convert_to_fp16 handles flat graphs only (no If / Loop / Scan subgraphs)')
    floats = _float_tensors(model)
    # One list of the node wrappers, used everywhere below: nodes are told apart by id(), which is
    # only stable (and unique) while every wrapper stays alive (protobuf may rebuild them per access).
    all_nodes = list(graph.node)
    consumers: dict[str, list[Any]] = {}
    for node in all_nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    # Which nodes compute in float32: the KEEP_FP32_OPS, and every node downstream of them whose
    # float data all comes from float32 nodes (the cost tail after the sums of squares, scores
    # after a reduction), except the FP16_OPS. Graph inputs count as float16 here (cast on entry).
    constant_ops = ('Constant', 'ConstantOfShape')
    constants = {t.name for t in graph.initializer} | {o for n in all_nodes if n.op_type in constant_ops
                                                       for o in n.output}
    fp32_nodes: set[int] = set()
    fp32_tensors: set[str] = set()
    for node in all_nodes:
        data = [t for t in node.input if t in floats and t not in constants]
        if node.op_type in KEEP_FP32_OPS or (node.op_type not in FP16_OPS and node.op_type not in constant_ops
                                             and data and all(t in fp32_tensors for t in data)):
            fp32_nodes.add(id(node))
            fp32_tensors.update(node.output)

    def wants_fp32(node: Any) -> bool:
        return id(node) in fp32_nodes

    # Home type of every float tensor: graph inputs float32; node outputs follow their node;
    # constants (initializers, Constant nodes) float16 unless only float32 nodes read them.
    home: dict[str, int] = {v.name: TensorProto.FLOAT for v in graph.input if v.name in floats}
    for tensor in graph.initializer:
        if tensor.name in floats:
            if all(wants_fp32(n) for n in consumers.get(tensor.name, [])):
                home[tensor.name] = TensorProto.FLOAT
            else:
                _to_fp16_tensor(tensor, f'initializer {tensor.name}')
                home[tensor.name] = TensorProto.FLOAT16
    for node in all_nodes:
        if node.op_type in constant_ops and all(wants_fp32(n) for o in node.output for n in consumers.get(o, [])):
            fp32_nodes.add(id(node))
        precision = TensorProto.FLOAT if wants_fp32(node) else TensorProto.FLOAT16
        for name in node.output:
            if name in floats:
                home[name] = precision
        if precision == TensorProto.FLOAT:
            continue
        for attr in node.attribute:
            if node.op_type == 'Cast' and attr.name == 'to' and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
            elif node.op_type in constant_ops and attr.name == 'value' and attr.t.data_type == TensorProto.FLOAT:
                _to_fp16_tensor(attr.t, f'{node.op_type} {node.name or node.output[0]}')
            elif node.op_type == 'Constant' and attr.name in ('value_float', 'value_floats', 'sparse_value'):
                raise ValueError(f'Constant {node.name}: attribute {attr.name} is not supported')
        if node.op_type == 'ConstantOfShape' and not node.attribute and node.output[0] in floats:
            node.attribute.append(helper.make_attribute('value', helper.make_tensor('value', TensorProto.FLOAT16,
                                                                                   [1], [0.0])))

    # Graph outputs keep float32: the producer writes '<name>__fp16', a Cast restores the name.
    tail = []
    for output in graph.output:
        if home.get(output.name) == TensorProto.FLOAT16:
            inner = f'{output.name}__fp16'
            for node in all_nodes:
                node.output[:] = [inner if n == output.name else n for n in node.output]
                node.input[:] = [inner if n == output.name else n for n in node.input]
            home[inner] = TensorProto.FLOAT16
            tail.append(helper.make_node('Cast', [inner], [output.name], name=f'{output.name}_to_fp32',
                                         to=TensorProto.FLOAT))

    # Casts where a consumer needs the other float type, each made once, before its first use.
    casts: dict[tuple[str, int], str] = {}
    nodes = []
    for node in all_nodes:
        need = TensorProto.FLOAT if wants_fp32(node) else TensorProto.FLOAT16
        for i, name in enumerate(node.input):
            if name not in home or home[name] == need:
                continue
            key = (name, need)
            if key not in casts:
                suffix = 'fp32' if need == TensorProto.FLOAT else 'fp16'
                casts[key] = f'{name}__{suffix}'
                nodes.append(helper.make_node('Cast', [name], [casts[key]], name=f'{name}_to_{suffix}', to=need))
            node.input[i] = casts[key]
        nodes.append(node)
    graph.ClearField('node')
    graph.node.extend(nodes + tail)
    graph.ClearField('value_info')  # stale float32 annotations; re-inferred below
    onnx.checker.check_model(model, full_check=True)
    return model
