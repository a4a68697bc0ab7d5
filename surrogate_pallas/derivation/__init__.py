"""The compile layer: from a neuron's step to what every kernel and every oracle runs.

* ``steps``: the forward, backward and tangent steps, derived from a ``Neuron``;
* ``residuals``: what the forward stores for the derivatives, and how it is encoded;
* ``placement``: which step parameters are kernel constants, per-neuron or scalar operands;
* ``kernel_spec``: a time-fused kernel's complete description (``KernelSpec``), built from the above;
* ``reference``: the jnp oracle, a loop over time of a ``KernelSpec``'s step.

The device code (``surrogate_pallas.kernels``) receives a ``KernelSpec`` and imports nothing from here.
"""
