"""Every torchvision-flavour network cnnc ships, counted against torchvision 0.29 (../shared/REFERENCE.md:
`sum(p.numel() for p in model.parameters())` as trainable, BN running mean and variance as non-trainable,
`num_batches_tracked` ignored), and its MACs against torchvision's published GFLOPS (which count conv and
dense multiply-accumulates, given to 3 decimals). Each row is reached by torchvision's builder name."""
from __future__ import annotations

import pytest

import cnnc

ROWS = [  # builder, total, trainable, non-trainable, input size, torchvision's published GFLOPS
    ("alexnet_torchvision", 61_100_840, 61_100_840, 0, 224, 0.714),
    ("mobilenet_v2", 3_538_984, 3_504_872, 34_112, 224, 0.301),
    ("mobilenet_v3_large", 5_507_432, 5_483_032, 24_400, 224, 0.217),
    ("mobilenet_v3_small", 2_554_968, 2_542_856, 12_112, 224, 0.057),
    ("efficientnet_b0", 5_330_564, 5_288_548, 42_016, 224, 0.386),
    ("efficientnet_b1", 7_856_232, 7_794_184, 62_048, 240, 0.687),
    ("efficientnet_b2", 9_177_562, 9_109_994, 67_568, 288, 1.088),
    ("efficientnet_b3", 12_320_528, 12_233_232, 87_296, 300, 1.827),
    ("efficientnet_b4", 19_466_816, 19_341_616, 125_200, 380, 4.394),
    ("efficientnet_b5", 30_562_520, 30_389_784, 172_736, 456, 10.266),
    ("efficientnet_b6", 43_265_136, 43_040_704, 224_432, 528, 19.068),
    ("efficientnet_b7", 66_658_680, 66_347_960, 310_720, 600, 37.746),
    ("efficientnet_v2_s", 21_612_360, 21_458_488, 153_872, 384, 8.366),
    ("efficientnet_v2_m", 54_431_388, 54_139_356, 292_032, 480, 24.582),
    ("efficientnet_v2_l", 119_027_848, 118_515_272, 512_576, 480, 56.08),
    ("convnext_tiny", 28_589_128, 28_589_128, 0, 224, 4.456),
    ("convnext_small", 50_223_688, 50_223_688, 0, 224, 8.684),
    ("convnext_base", 88_591_464, 88_591_464, 0, 224, 15.355),
    ("convnext_large", 197_767_336, 197_767_336, 0, 224, 34.361),
    ("shufflenet_v2_x0_5", 1_374_744, 1_366_792, 7_952, 224, 0.04),
    ("shufflenet_v2_x1_0", 2_294_784, 2_278_604, 16_180, 224, 0.145),
    ("shufflenet_v2_x1_5", 3_527_064, 3_503_624, 23_440, 224, 0.296),
    ("shufflenet_v2_x2_0", 7_427_712, 7_393_996, 33_716, 224, 0.583),
    ("regnet_y_400mf", 4_371_296, 4_344_144, 27_152, 224, 0.402),
    ("regnet_y_800mf", 6_462_944, 6_432_512, 30_432, 224, 0.834),
    ("regnet_y_1_6gf", 11_255_102, 11_202_430, 52_672, 224, 1.612),
    ("regnet_y_3_2gf", 19_502_498, 19_436_338, 66_160, 224, 3.176),
    ("regnet_y_8gf", 39_468_000, 39_381_472, 86_528, 224, 8.473),
    ("regnet_y_16gf", 83_712_956, 83_590_140, 122_816, 224, 15.912),
    ("regnet_y_32gf", 145_205_058, 145_046_770, 158_288, 224, 32.28),
    ("regnet_y_128gf", 645_227_966, 644_812_894, 415_072, 384, 374.57),
    ("regnet_x_400mf", 5_533_832, 5_495_976, 37_856, 224, 0.414),
    ("regnet_x_800mf", 7_296_968, 7_259_656, 37_312, 224, 0.8),
    ("regnet_x_1_6gf", 9_233_640, 9_190_136, 43_504, 224, 1.603),
    ("regnet_x_3_2gf", 15_359_112, 15_296_552, 62_560, 224, 3.177),
    ("regnet_x_8gf", 39_663_112, 39_572_648, 90_464, 224, 7.995),
    ("regnet_x_16gf", 54_389_704, 54_278_536, 111_168, 224, 15.941),
    ("regnet_x_32gf", 107_973_576, 107_811_560, 162_016, 224, 31.736),
    ("resnet18", 11_699_112, 11_689_512, 9_600, 224, 1.814),
    ("resnet34", 21_814_696, 21_797_672, 17_024, 224, 3.664),
    ("resnet50_torchvision", 25_610_152, 25_557_032, 53_120, 224, 4.089),
    ("resnet101", 44_654_504, 44_549_160, 105_344, 224, 7.801),
    ("resnet152", 60_344_232, 60_192_808, 151_424, 224, 11.514),
    # vgg (rows added with vgg.yaml)
    ("vgg11", 132_863_336, 132_863_336, 0, 224, 7.609),
    ("vgg11_bn", 132_874_344, 132_868_840, 5_504, 224, 7.609),
    ("vgg13", 133_047_848, 133_047_848, 0, 224, 11.308),
    ("vgg13_bn", 133_059_624, 133_053_736, 5_888, 224, 11.308),
    ("vgg16_torchvision", 138_357_544, 138_357_544, 0, 224, 15.47),
    ("vgg16_bn", 138_374_440, 138_365_992, 8_448, 224, 15.47),
    ("vgg19", 143_667_240, 143_667_240, 0, 224, 19.632),
    ("vgg19_bn", 143_689_256, 143_678_248, 11_008, 224, 19.632),
    # densenet and squeezenet (rows added with their files)
    ("densenet121", 8_062_504, 7_978_856, 83_648, 224, 2.834),
    ("densenet161", 28_900_936, 28_681_000, 219_936, 224, 7.728),
    ("densenet169", 14_307_880, 14_149_480, 158_400, 224, 3.36),
    ("densenet201", 20_242_984, 20_013_928, 229_056, 224, 4.291),
    ("squeezenet1_0", 1_248_424, 1_248_424, 0, 224, 0.819),
    ("squeezenet1_1", 1_235_496, 1_235_496, 0, 224, 0.349),
    # mnasnet, resnext and wide_resnet (rows added with their files)
    ("resnext50_32x4d", 25_097_128, 25_028_904, 68_224, 224, 4.23),
    ("resnext101_32x8d", 88_994_216, 88_791_336, 202_880, 224, 16.414),
    ("resnext101_64x4d", 83_658_152, 83_455_272, 202_880, 224, 15.46),
    ("wide_resnet50_2", 68_951_464, 68_883_240, 68_224, 224, 11.398),
    ("wide_resnet101_2", 127_024_552, 126_886_696, 137_856, 224, 22.753),
    ("mnasnet0_5", 2_239_136, 2_218_512, 20_624, 224, 0.104),
    ("mnasnet0_75", 3_200_016, 3_170_208, 29_808, 224, 0.215),
    ("mnasnet1_0", 4_421_232, 4_383_312, 37_920, 224, 0.314),
    ("mnasnet1_3", 6_331_072, 6_282_256, 48_816, 224, 0.526),
    ("googlenet", 6_639_464, 6_624_904, 14_560, 224, 1.498),
    ("inception_v3_torchvision", 23_869_000, 23_834_568, 34_432, 299, 5.713),
]


@pytest.mark.parametrize(("name", "total", "trainable", "frozen", "size", "gflops"), ROWS, ids=[r[0] for r in ROWS])
def test_counts_equal_torchvision_s(name, total, trainable, frozen, size, gflops):
    graph = cnnc.build(name)
    assert graph.counts() == {"total": total, "trainable": trainable, "non_trainable": frozen}
    assert graph.input_shape == (3, size, size)
    assert graph.output_shape == (1000,)
    assert round(graph.macs / 1e9, 3) == pytest.approx(gflops, abs=1.5e-3)  # conv and dense MACs, as published
    assert graph.layers[-1].op != "softmax"  # logits, as torchvision gives them (SqueezeNet's from a pooled conv)
