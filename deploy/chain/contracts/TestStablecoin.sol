// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title A stablecoin for local development and tests (6 decimals, like USDC).
/// @notice Production configuration points paystream at a real token instead.
contract TestStablecoin is ERC20, Ownable {
    constructor(address owner_) ERC20("Paystream Test Dollar", "PTUSD") Ownable(owner_) {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mint test funds (owner only).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
