import itertools

import pytest
import torch

from hemcli.engine.batches import LoaderBatches, Shard, TensorBatches, crop_flip, to_unit


def test_batches_cover_every_sample_once():
    x, y = torch.arange(10).float()[:, None], torch.arange(10)
    batches = TensorBatches(x, y, 4, torch.Generator().manual_seed(0))
    seen = torch.cat([b for _, b, _ in batches])
    assert len(batches) == 3 and sorted(seen.tolist()) == list(range(10))
    assert not torch.equal(seen, y)  # shuffled


def test_crop_flip_is_a_shifted_crop_or_its_mirror():
    x = torch.arange(2 * 3 * 5 * 5).float().reshape(2, 3, 5, 5) + 1
    out = crop_flip(x, torch.Generator().manual_seed(1), pad=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        candidates = [padded[i, :, dy:dy + 5, dx:dx + 5] for dy, dx in itertools.product(range(5), range(5))]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(out[i], c) for c in candidates)


def test_crop_flip_draws_every_shift_and_both_mirrors():
    """400 copies of one image with distinct pixel values: each output identifies its (dy, dx, flip)."""
    image = torch.arange(1, 10).float().reshape(1, 1, 3, 3)
    out = crop_flip(image.repeat(400, 1, 1, 1), torch.Generator().manual_seed(0), pad=1)
    padded = torch.nn.functional.pad(image[0], (1, 1, 1, 1))
    views = {(dy, dx, flip): (padded[:, dy:dy + 3, dx:dx + 3].flip(-1) if flip else padded[:, dy:dy + 3, dx:dx + 3])
             for dy, dx, flip in itertools.product(range(3), range(3), (False, True))}
    drawn = [next(key for key, view in views.items() if torch.equal(o, view)) for o in out]
    assert set(drawn) == set(views)  # all 9 shifts x 2 mirrors occur (p of missing one < 1e-8)
    assert 150 < sum(flip for _, _, flip in drawn) < 250  # about half mirrored


def test_uint8_batches_become_float_in_unit_range():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1)
    out = torch.cat([b for b, _, _ in TensorBatches(x, torch.arange(3), 2, torch.Generator().manual_seed(0))])
    assert out.dtype == torch.float32
    assert sorted(out.flatten().tolist()) == pytest.approx([0.0, 0.2, 1.0])
    assert to_unit(torch.tensor([0.5])).tolist() == [0.5]  # float passes unchanged


def test_crop_flip_on_uint8_equals_crop_flip_on_floats():
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    a = crop_flip(x, torch.Generator().manual_seed(3))
    b = crop_flip(x.float(), torch.Generator().manual_seed(3))
    assert a.dtype == torch.uint8 and torch.equal(a.float(), b)


def test_shards_split_every_global_batch_into_the_single_process_batches():
    """Two ranks with alike generators take the halves of the batches one process draws (with the same
    augmentation), and their loss weights make DDP's gradient average the global mean: a rank with
    3 of 5 samples weighs 3 * 2 / 5 = 1.2, the one with 2 weighs 0.8."""
    x, y = torch.randint(0, 256, (11, 1, 6, 6), dtype=torch.uint8), torch.arange(11)

    def epoch(shard):
        return list(TensorBatches(x, y, 5, torch.Generator().manual_seed(7), "crop_flip", shard))

    whole, first, second = epoch(Shard()), epoch(Shard(0, 2)), epoch(Shard(1, 2))
    for (wx, wy, ww), (ax, ay, aw), (bx, by, bw) in zip(whole, first, second):
        assert torch.equal(torch.cat([ax, bx]), wx) and torch.equal(torch.cat([ay, by]), wy)
        # DDP averages the ranks' weighted means: that is the mean over the global batch
        ddp = (aw * ay.float().mean() + bw * by.float().mean()) / 2
        assert ww == 1.0 and ddp.item() == pytest.approx(wy.float().mean().item())
    # 11 = 5 + 5 + 1: the last global batch of one sample cannot be split over two ranks, so two
    # ranks drop it (one process keeps it)
    assert len(whole) == 3 and len(first) == len(second) == 2
    assert [len(b[1]) for b in first] == [2, 2] and [len(b[1]) for b in second] == [3, 3]
    assert [b[2] for b in second] == [1.2, 1.2] and [b[2] for b in first] == [0.8, 0.8]


def test_loader_batches_stream_the_same_samples_sharded():
    data = torch.utils.data.TensorDataset(torch.rand(9, 1, 2, 2), torch.arange(9))
    device = torch.device("cpu")
    whole = list(LoaderBatches(data, 4, torch.Generator().manual_seed(1), device, workers=0))
    parts = [list(LoaderBatches(data, 4, torch.Generator().manual_seed(1), device, workers=0, shard=Shard(r, 2)))
             for r in (0, 1)]
    assert sorted(torch.cat([y for _, y, _ in whole]).tolist()) == list(range(9))
    for k, (_, y, weight) in enumerate(whole[:2]):
        assert torch.equal(torch.cat([parts[0][k][1], parts[1][k][1]]), y) and weight == 1.0
    assert len(whole) == 3 and [len(p) for p in parts] == [2, 2]  # 9 = 4 + 4 + 1: two ranks drop the 1


class _BadFile(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        from hemcli.errors import HemError
        if index == 2:
            raise HemError("masks/b.png holds the value 40, outside 0-18 and not the ignore index 255")
        return torch.zeros(1, 2, 2), torch.zeros(2, 2, dtype=torch.int64)


def test_a_bad_file_read_in_a_worker_is_still_one_line():
    from hemcli.engine.batches import LoaderBatches
    from hemcli.errors import HemError

    batches = LoaderBatches(_BadFile(), 1, torch.Generator().manual_seed(0), torch.device("cpu"), workers=1)
    with pytest.raises(HemError) as caught:
        list(batches)
    assert str(caught.value) == "masks/b.png holds the value 40, outside 0-18 and not the ignore index 255"
