"""bench: does a GPU pay off for training a small CNN? Measures CPU and GPU training on this machine.

    import bench
    df = bench.run(devices="cpu", pipeline="tutorial", batch_size=4, budget="500steps")   # bench run, in Python
    bench.render(df).headline                                                          # bench report
    bench.load("results/")                                                             # any results, as pandas
"""

__version__ = "0.1.0"
API = ("run", "render", "load")  # imported on first use: `import bench` stays instant and torch-free


def __getattr__(name: str):
    if name in ("run", "render"):
        from bench import api

        return getattr(api, name)
    if name == "load":
        from bench.results import load

        return load
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
