"""Device kernels registered in Python: Triton kernels (default) or ATen reference kernels, each
charged by the device model's cost function for its op family."""


def install():
    pass
