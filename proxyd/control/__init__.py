"""proxyd's side of the control-plane API (/internal/v1): reports out, config snapshot in.

Standard library only: proxyd keeps serving when the control plane is down.
"""
