// xg::data: the Dataset interface, CIFAR-10 and image folders, subset views and splits, transforms,
// image features (HOG, hue histogram), and the prefetching DataLoader.
#pragma once

#include "data/cifar10.hpp"
#include "data/dataset.hpp"
#include "data/features.hpp"
#include "data/image_folder.hpp"
#include "data/loader.hpp"
#include "data/pixels.hpp"
#include "data/sampler.hpp"
#include "data/subset.hpp"
#include "data/transforms.hpp"
#include "data/whitening.hpp"
