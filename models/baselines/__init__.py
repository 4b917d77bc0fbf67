"""The paper's alternatives to on-device MicroTL (Table II), computed rather than quoted.

- Edge-TL (edge_tl.py): the device uploads its N raw samples; an edge server trains the head on the *unquantized*
  network's float features at the cut, post-quantizes it to int8 (q7) and sends it back; the device then runs its
  int8 network plus the int8 head.
- Cloud-QAT (cloud_qat.py): the device uploads all target data; the cloud fine-tunes the whole network with
  quantization-aware training (power-of-two fake quantization, fakequant.py; LSTM / GRU step by step on
  the recurrent formats, fakequant_rnn.py) and sends the int8 network back.

Accuracy is always measured on the integer path (the int8 network and head as the device runs them); the radio
cost of each transfer is priced by the board object the caller passes in (`board.link`: cost_models.radio). Published Table II values: published.py.
"""
from .cloud_qat import CloudQATResult, QATParams, cloud_qat, device_spec
from .edge_tl import EdgeInputs, EdgeTLResult, edge_inputs, edge_tl
from .headquant import quantize_head
from .published import PUBLISHED_TABLE2, published_table2

__all__ = ["CloudQATResult", "EdgeInputs", "EdgeTLResult", "PUBLISHED_TABLE2", "QATParams", "cloud_qat", "device_spec",
           "edge_inputs", "edge_tl", "published_table2", "quantize_head"]
