"""Building blocks of :class:`monitors.mmd_adversarial.MMDAdversarialMonitor`, one job per module.

==================  =================================================================
module              job
==================  =================================================================
``kernel``          the Gaussian kernel summed over bandwidths ``sigma * 2**k``
``standardize``     feature scaling with statistics of the reference
``permutation``     MMD² for many permutations at once from the tiled pooled kernel
``batched``         the same for many small tests at once (the detection rate)
``pvalues``         +1-corrected p-values, critical values, Fisher combination
``class_matching``  reference subsamples that match the batch's predicted class mix
``detection_rate``  the repeated-test detection rate and its binomial interval
``sample_scores``   per-sample witness, contribution and mean-embedding scores
``alibi_backend``   ``AlibiDetectMMDMonitor``: the monitor with alibi-detect's ``MMDDrift``
``inputs``          coercion and checks of user input, with clear errors
==================  =================================================================

Nothing here imports ZenML, MLflow or alibi-detect at import time.
"""
