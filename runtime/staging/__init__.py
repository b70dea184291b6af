"""How converted control flow is lowered onto a tracer's operators."""
