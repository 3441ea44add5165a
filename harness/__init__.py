"""nas-harness: a benchmark-driven reproduction harness for performance estimation in NAS.

Data flows one way: benchmark -> space -> estimator -> strategy -> run store -> report.
"""

__version__ = "0.1.0"
