"""Caches: embedding LRU, finished-audio caches (memory and a real Redis), and the engine using them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxserve.engine.audio import Timing
from voxserve.engine.cache import (
    CachedAudio,
    EmbeddingCache,
    MemoryAudioCache,
    RedisAudioCache,
    audio_key,
    open_audio_cache,
)
from voxserve.engine.controls import SynthesisParams
from voxserve.engine.interface import SpeechJob
from voxserve.engine.runtime import Engine
from voxserve.errors import InvalidInput


def audio(n: int, seed: int = 0) -> CachedAudio:
    rng = np.random.default_rng(seed)
    samples = rng.uniform(-1, 1, n).astype(np.float32)
    return CachedAudio(samples, 24000, (Timing("你", 0.0, 0.1), Timing("好", 0.1, 0.25)))


# --- embeddings -------------------------------------------------------------------------------------


def test_embedding_cache_evicts_least_recently_used_by_count_and_bytes():
    cache = EmbeddingCache(max_items=2, max_bytes=1 << 20)
    a, b, c = torch.zeros(256), torch.ones(256), torch.full((256,), 2.0)
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recent
    cache.put("c", c)
    assert cache.get("b") is None and cache.get("a") is a and cache.get("c") is c
    assert (cache.hits, cache.misses) == (3, 1)
    small = EmbeddingCache(max_items=100, max_bytes=3 * 256 * 4)
    for i in range(5):
        small.put(i, torch.zeros(256))
    assert len(small) == 3 and small.nbytes == 3 * 256 * 4
    assert small.get(0) is None and small.get(4) is not None


def test_embedding_get_or_compute_computes_once():
    cache = EmbeddingCache()
    calls = []

    def compute() -> torch.Tensor:
        calls.append(1)
        return torch.randn(256)

    first = cache.get_or_compute(("spk", "abc"), compute)
    assert cache.get_or_compute(("spk", "abc"), compute) is first
    assert calls == [1]


# --- finished audio -------------------------------------------------------------------------------


def test_memory_audio_cache_is_bounded_and_counts():
    cache = MemoryAudioCache(max_items=10, max_bytes=3 * 1000 * 4)
    for i in range(4):
        cache.put(f"k{i}", audio(1000, i))
    assert len(cache) == 3
    assert cache.get("k0") is None
    hit = cache.get("k3")
    assert hit is not None and np.array_equal(hit.samples, audio(1000, 3).samples)
    assert (cache.hits, cache.misses) == (1, 1)


def test_audio_key_covers_voice_text_and_every_param():
    base = audio_key("baker", ["你好。"], SynthesisParams())
    assert base == audio_key("baker", ["你好。"], SynthesisParams())
    assert (
        len(
            {
                base,
                audio_key("other", ["你好。"], SynthesisParams()),
                audio_key("baker", ["你好！"], SynthesisParams()),
                audio_key("baker", ["你好。"], SynthesisParams(speed=1.5)),
                audio_key("baker", ["你好。"], SynthesisParams(volume=0.5)),
                audio_key("baker", ["你好。"], SynthesisParams(emotion="开心")),
            }
        )
        == 6
    )


def test_open_audio_cache_specs():
    assert open_audio_cache(None) is None and open_audio_cache("") is None
    assert isinstance(open_audio_cache("memory"), MemoryAudioCache)
    given = MemoryAudioCache()
    assert open_audio_cache(given) is given
    with pytest.raises(InvalidInput, match="memory"):
        open_audio_cache("memcached://x")


def test_redis_cache_round_trips_samples_and_timings_with_a_ttl(redis_url):
    cache = RedisAudioCache(redis_url, ttl_s=120, prefix="test:roundtrip:")
    stored = audio(12345)
    cache.put("k", stored)
    got = cache.get("k")
    assert got is not None
    assert got.samples.dtype == np.float32 and np.array_equal(got.samples, stored.samples)
    assert got.sample_rate == 24000 and got.chars == stored.chars
    assert 0 < cache._client.ttl("test:roundtrip:k") <= 120
    assert cache.get("missing") is None
    assert (cache.hits, cache.misses, cache.errors) == (1, 1, 0)
    cache.close()


def test_unreachable_redis_is_a_miss_not_a_failure(free_port):
    cache = RedisAudioCache(f"redis://127.0.0.1:{free_port}/0", timeout_s=0.2, retry_s=0.0)
    cache.put("k", audio(10))
    assert cache.get("k") is None
    assert cache.errors == 2 and cache.misses == 1
    resting = RedisAudioCache(f"redis://127.0.0.1:{free_port}/0", timeout_s=0.2, retry_s=60.0)
    assert resting.get("k") is None and resting.get("k") is None
    assert resting.errors == 1 and resting.misses == 2  # the second lookup skipped the dead server


# --- the engine with a cache ------------------------------------------------------------------------


def calls(engine: Engine) -> float:
    return engine.metrics.value("voxserve_batch_size_count", stage="acoustic")


def test_engine_cache_hit_returns_identical_audio(tts):
    text = "缓存测试，你好。"
    with Engine(tts, cache="memory") as engine:
        (first,) = engine.speak(SpeechJob(text, timestamps=True))
        ran = calls(engine)
        engine.flush_cache()  # the store happens off the executor thread
        (again,) = engine.speak(SpeechJob(text, timestamps=True))
        (streamed,) = engine.speak(SpeechJob(text, stream=True))  # a hit is one final chunk for a stream too
        assert calls(engine) == ran  # no model work for the hits
        assert engine.metrics.value("voxserve_cache_hits_total") == 2
        assert engine.metrics.value("voxserve_cache_misses_total") == 1
        long_text = "这句话很长。" * 40  # over cache_max_chars: never looked up
        engine.speak(SpeechJob(long_text))
        assert engine.metrics.value("voxserve_cache_misses_total") == 1
    np.testing.assert_array_equal(again.samples, first.samples)
    np.testing.assert_array_equal(streamed.samples, first.samples)
    assert again.chars == first.chars and again.final and streamed.final and streamed.chars == ()


def test_redis_cache_is_shared_by_two_engines(tts, redis_url):
    text = "两个引擎共用一个缓存。"
    with Engine(tts, cache=redis_url) as first_engine:
        (made,) = first_engine.speak(SpeechJob(text, timestamps=True))
        assert first_engine.metrics.value("voxserve_cache_misses_total") == 1
    # leaving the block drained the engine and flushed its cache writes
    with Engine(tts, cache=redis_url) as second_engine:
        (got,) = second_engine.speak(SpeechJob(text, timestamps=True))
        assert second_engine.metrics.value("voxserve_cache_hits_total") == 1
        assert calls(second_engine) == 0
        (other,) = second_engine.speak(SpeechJob(text, params=SynthesisParams(speed=1.5)))
        assert second_engine.metrics.value("voxserve_cache_misses_total") == 1
    np.testing.assert_array_equal(got.samples, made.samples)
    assert got.chars == made.chars
    assert len(other.samples) < len(made.samples)
