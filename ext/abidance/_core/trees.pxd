# Tree ensembles (scikit-learn gradient boosting) flattened for one-row inference.
#
# Every tree's nodes sit back to back in the same arrays; `roots[t]` is tree t's first
# node and child indices are absolute. A leaf has feature -1. Children always come after
# their parent inside their own tree (checked when built), so a walk ends at a leaf in
# at most the tree's node count steps, whatever the arrays hold.
from libc.stdint cimport int32_t, uint8_t


cdef class TreeEnsemble:
    cdef readonly str source              # "hgb", "gb" (from_estimator) or what the caller named it
    cdef readonly Py_ssize_t n_features
    cdef readonly Py_ssize_t n_trees
    cdef readonly Py_ssize_t n_nodes
    cdef readonly double baseline         # the raw score before the first tree
    cdef readonly bint float32_input      # features rounded to float32 before comparing (GradientBoosting)
    cdef tuple _arrays                    # the owning numpy arrays (also what pickling keeps)
    cdef const int32_t[::1] _feature
    cdef const double[::1] _threshold
    cdef const int32_t[::1] _left
    cdef const int32_t[::1] _right
    cdef const uint8_t[::1] _missing_left
    cdef const double[::1] _value
    cdef const int32_t[::1] _roots

    cdef double raw_score_c(self, const double* x) noexcept nogil
