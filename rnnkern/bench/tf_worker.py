"""The ``keras-tf`` column's worker: Keras 3 on TensorFlow in a process of its own
(Keras picks its backend once per process, and rnnkern-bench's ``keras`` column
runs Keras on torch), its layers called inside a ``tf.function``.

Run as ``python -m rnnkern.bench.tf_worker THREADS``; the parent (impls.TfWorker)
sends pickled requests on stdin and reads pickled replies on stdout, each framed
by an 8-byte length. The pipe carries only what the parent itself pickled.

Requests: ("prepare", cell, mode, arrays) builds the layer with the case's weights
and traces the function (one untimed call); ("run",) runs one call and replies
with the seconds it took, measured here around the call so that the pipe's round
trip is not counted; ("collect",) replies with the last call's outputs and
gradients as NumPy arrays; ("quit",) ends the worker. Any failure is replied as
("error", text)."""
import os
import pickle
import struct
import sys
import time


def _read(stream):
    head = stream.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    return pickle.loads(stream.read(n))


def _write(stream, obj):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)))
    stream.write(data)
    stream.flush()


def _build(cell, mode, a):
    import keras
    import tensorflow as tf
    N, T, C = a["x"].shape
    H = a["U"].shape[0]
    cls = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
           "gru": keras.layers.GRU}[cell]
    kw = {"reset_after": True} if cell == "gru" else {}
    layer = cls(H, return_sequences=True, **kw)
    layer.build((N, T, C))
    layer.set_weights([a["W"], a["U"], a["b"]])
    x = tf.constant(a["x"])
    if mode == "inference":
        @tf.function
        def call():
            return (layer(x, training=False),)
        return call
    dy = tf.constant(a["dy"])
    weights = [w.value for w in layer.weights]   # kernel, recurrent_kernel, bias

    @tf.function
    def call():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        g = tape.gradient(y, [x] + weights, output_gradients=dy)
        return (y,) + tuple(g)
    return call


def main(argv):
    threads = int(argv[1]) if len(argv) > 1 else 1
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr          # nothing else may write to the reply pipe
    try:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        import keras
        _write(out, ("ready", f"tensorflow {tf.__version__}, keras {keras.__version__}"))
    except Exception as e:   # not installed, or unusable here
        _write(out, ("error", f"{type(e).__name__}: {e}"))
        return 1
    call, last, mode = None, None, None
    while True:
        req = _read(inp)
        if req is None or req[0] == "quit":
            return 0
        try:
            if req[0] == "prepare":
                _, cell, mode, arrays = req
                call = _build(cell, mode, arrays)
                last = call()
                _write(out, ("ok",))
            elif req[0] == "run":
                t0 = time.perf_counter()
                last = call()
                _write(out, ("ok", time.perf_counter() - t0))
            elif req[0] == "collect":
                names = ("y",) if mode == "inference" else (
                    "y", "dx", "dkernel", "drecurrent_kernel", "dbias")
                _write(out, ("ok", {n: v.numpy() for n, v in zip(names, last)}))
            else:
                _write(out, ("error", f"unknown request {req[0]!r}"))
        except Exception as e:
            _write(out, ("error", f"{type(e).__name__}: {e}"))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
